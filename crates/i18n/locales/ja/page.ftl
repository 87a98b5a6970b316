# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = 招待を承諾 · WowChat
brand = WowChat
noscript = 招待を承諾するには、このページでJavaScriptを使用する必要があります。このサイトでJavaScriptを有効にしてから、メールのリンクをもう一度開いてください。
loading = 招待を確認しています…
invite-heading = WowChatの{ $workspace }に参加しましょう
invite-from = { $inviter }から、{ $workspace }への招待が届いています。
invite-from_unknown = { $workspace }への招待が届いています。
invite-email = メールアドレス
invite-role = ロール
invite-expires = 招待の有効期限
form-heading = アカウントを作成
form-display_name-label = 名前
form-display_name-hint = 同僚に表示される名前です（1～100文字）。
form-password-label = パスワードを設定
form-password-hint = 8～128文字で入力してください。関連のない単語をいくつか組み合わせると、長くて覚えやすく、推測されにくいパスワードになります。
form-submit = 承諾してアカウントを作成
form-submitting = アカウントを作成しています…
field-display_name = 名前を入力してください（1～100文字）。
field-password = 8～128文字のパスワードを設定してください。
field-summary = 下の印が付いた項目を修正してください。
success-heading = { $workspace }へようこそ！
success-body = アカウントの準備ができました。WowChatを開き、{ $email }と、先ほど設定したパスワードでサインインしてください。
success-status = アカウントの準備ができました。
action-open_app = WowChatを開く
action-sign_in = WowChatにサインイン
action-try_again = もう一度試す
error-INVITATION_NOT_FOUND-heading = この招待リンクは使用できません
error-INVITATION_NOT_FOUND-body = リンクが途中で切れている可能性があります。招待メールからもう一度開くか、リンク全体をコピーしてアドレスバーに貼り付けてください。それでも開けない場合は、招待した人に新しい招待を依頼してください。
error-INVITATION_EXPIRED-heading = この招待は有効期限が切れています
error-INVITATION_EXPIRED-body = 招待には有効期限があります。招待した人に、新しい招待を送ってもらうよう依頼してください。
error-INVITATION_REVOKED-heading = この招待は取り消されました
error-INVITATION_REVOKED-body = この招待はもう使用できません。引き続きアクセスが必要な場合は、招待した人にお問い合わせください。
error-INVITATION_ALREADY_ACCEPTED-heading = この招待はすでに承諾されています
error-INVITATION_ALREADY_ACCEPTED-body = アカウントはすでに作成されています。招待を承諾したときのメールアドレスとパスワードでサインインしてください。
error-USER_ALREADY_MEMBER-heading = すでにメンバーです
error-USER_ALREADY_MEMBER-body = このメールアドレスのアカウントは、すでにワークスペースに存在します。サインインしてください。
error-INVITER_NOT_AUTHORIZED-heading = この招待はもう使用できません
error-INVITER_NOT_AUTHORIZED-body = 招待した人は、このワークスペースにメンバーを追加できなくなりました。ワークスペースの別の管理者に招待を依頼してください。
error-SEAT_LIMIT_REACHED-heading = ワークスペースのシートに空きがありません
error-SEAT_LIMIT_REACHED-body = すべてのシートが使用されています。ワークスペースの管理者にシートを空けるか追加するよう依頼してから、リンクをもう一度開いてください。
error-USER_ACCESS_EXPIRED-heading = この招待によるアクセス期間は終了しました
error-USER_ACCESS_EXPIRED-body = 招待した人に新しい招待を依頼してください。
error-INVITATION_ATTEMPTS_EXCEEDED-heading = 試行回数が多すぎます
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = 短時間にこの招待で何度も試行されました。{ $wait }待ってから、もう一度お試しください。
error-busy-heading = WowChatが混み合っています
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = { $wait }待ってから、もう一度お試しください。
error-busy-body_no_wait = しばらく待ってから、もう一度お試しください。
error-unexpected-heading = 問題が発生しました
error-unexpected-body = 現在、招待を確認または承諾できません。しばらくしてからもう一度お試しください。問題が続く場合は、招待した人にお問い合わせください。
error-offline-heading = WowChatに接続できません
error-offline-body = インターネット接続を確認してから、もう一度お試しください。

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = オーナー
role-name-admin = 管理者
role-name-supervisor = スーパーバイザー
role-name-agent = エージェント

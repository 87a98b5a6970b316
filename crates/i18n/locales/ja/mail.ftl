# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = チームのメンバー
fallback-workspace = ワークスペース
fallback-your-workspace = あなたのワークスペース
fallback-greeting-name = ご担当者
fallback-someone = 新しいメンバー

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = { $role }として
role-admin = { $role }として
role-supervisor = { $role }として
role-agent = { $role }として
role-custom = 「{ $role }」のロールで
role-name-owner = オーナー
role-name-admin = 管理者
role-name-supervisor = スーパーバイザー
role-name-agent = エージェント

## The invitation email

invitation-subject = { $inviter }からWowChatの{ $workspace }への招待が届きました
invitation-heading = WowChatの{ $workspace }に参加しましょう
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = { $inviter }から、WowChatの{ $workspace }に参加するよう招待が届きました。
# $role: one of the role phrases above.
invitation-invited-as = { $inviter }から、WowChatの{ $workspace }に{ $role }参加するよう招待が届きました。
invitation-accept-button = 招待を承諾する
invitation-accept-text = 招待を承諾するには、次のリンクを開いてください：
invitation-message-intro = { $inviter }からのメッセージ：
invitation-message-note = このメッセージは{ $inviter }が書いたもので、WowChatからのものではありません。
link-fallback = ボタンが機能しない場合は、次のリンクを開いてください：
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = この招待の有効期限は{ $expires }（UTC）です。
invitation-footer = このメールは、{ $inviter }が{ $invitee }をWowChatの{ $workspace }に招待したため送信されました。心当たりがない場合は、無視していただいて構いません。招待を承諾しない限り、何も起こりません。
invitation-footer-reply = ご質問があれば、このメールに返信すると{ $inviter }に届きます。
unsubscribe-link = WowChatからの招待メールを受け取らない
unsubscribe-scope = （すべてのワークスペースから）
unsubscribe-text = WowChatからの招待メールを受け取らない（すべてのワークスペースから）：

## The accepted notice (to the one who invited)

accepted-subject = { $user }が{ $workspace }への招待を承諾しました
accepted-heading = 招待が承諾されました
accepted-greeting = { $inviter }様
# $user: a name, with the email address in brackets when it differs.
accepted-joined = { $user }があなたの招待を承諾し、WowChatの{ $workspace }に参加しました。
accepted-joined-as = { $user }があなたの招待を承諾し、WowChatの{ $workspace }に{ $role }参加しました。
accepted-member-button = 新しいメンバーを表示
accepted-member-text = 新しいメンバーを表示：
accepted-everyone = { $workspace }のメンバー一覧：
accepted-footer = このメールは、あなたが{ $user }をWowChatの{ $workspace }に招待したため送信されました。

## The join request confirmation

confirmation-subject = WowChatの{ $workspace }への参加リクエストを確認してください
confirmation-heading = { $workspace }への参加リクエストを確認してください
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = どなたか（おそらくあなた）が、{ $requester }として、WowChatの{ $workspace }への参加をリクエストしました。
confirmation-why = { $workspace }の管理者に届くよう、リクエストを確認してください。
confirmation-why-text = { $workspace }の管理者に届くよう、リクエストを確認してください：
confirmation-button = リクエストを確認する
confirmation-next = 招待するかどうかは管理者が判断します。招待される場合は、招待メールが届きます。
confirmation-expires = このリンクは{ $expires }（UTC）まで有効です。
confirmation-footer = このメールは、WowChatの{ $workspace }への参加リクエストで{ $requester }が指定されたため送信されました。心当たりがない場合は、このメールを無視してください。リクエストが確認されない限り、何も起こりません。

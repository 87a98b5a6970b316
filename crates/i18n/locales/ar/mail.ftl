# The emails WowChat sends. Placeholders ($name) are names and links as
# people typed them or the service made them: keep them, never translate
# them. `WowChat` is the product's name: keep it as it is.

## Words for what a command left empty

fallback-inviter = أحد الزملاء
fallback-workspace = مساحة عمل
fallback-your-workspace = مساحة عملك
fallback-greeting-name = بك
fallback-someone = شخص ما

## Roles, as they end a sentence ("… invited you to join Acme on WowChat as an admin.")
# $role: the role's name (role-name-… below, or a name the workspace gave a
# role of its own), shown in bold in the HTML email.

role-owner = بدور { $role }
role-admin = بدور { $role }
role-supervisor = بدور { $role }
role-agent = بدور { $role }
role-custom = بالدور «{ $role }»
role-name-owner = المالك
role-name-admin = المسؤول
role-name-supervisor = المشرف
role-name-agent = الوكيل

## The invitation email

invitation-subject = دعوة من { $inviter } للانضمام إلى { $workspace } على WowChat
invitation-heading = انضم إلى { $workspace } على WowChat
# $inviter: a name, with the email address in brackets when it differs.
invitation-invited = تلقيت دعوة من { $inviter } للانضمام إلى { $workspace } على WowChat.
# $role: one of the role phrases above.
invitation-invited-as = تلقيت دعوة من { $inviter } للانضمام إلى { $workspace } على WowChat { $role }.
invitation-accept-button = قبول الدعوة
invitation-accept-text = لقبول الدعوة:
invitation-message-intro = رسالة من { $inviter }:
invitation-message-note = هذه الرسالة بقلم { $inviter }، وليست من WowChat.
link-fallback = إذا لم يعمل الزر، فافتح هذا الرابط:
# $expires: a date and time, written for this language; the time is UTC.
invitation-expires = تنتهي صلاحية الدعوة في { $expires } (UTC).
invitation-footer = وصلتك هذه الرسالة بسبب دعوة من { $inviter } إلى { $invitee } للانضمام إلى { $workspace } على WowChat. إذا لم تكن تتوقعها، فيمكنك تجاهلها: لن يحدث شيء ما لم تقبل الدعوة.
invitation-footer-reply = ألديك أسئلة؟ يمكنك الرد على هذه الرسالة للتواصل مع { $inviter }.
unsubscribe-link = لا أرغب في تلقي دعوات WowChat
unsubscribe-scope = (من أي مساحة عمل)
unsubscribe-text = لا أرغب في تلقي دعوات WowChat (من أي مساحة عمل):

## The accepted notice (to the one who invited)

accepted-subject = وافق { $user } على دعوتك للانضمام إلى { $workspace }
accepted-heading = تم قبول دعوتك
accepted-greeting = مرحبًا { $inviter }،
# $user: a name, with the email address in brackets when it differs.
accepted-joined = وافق { $user } على دعوتك وانضم إلى { $workspace } على WowChat.
accepted-joined-as = وافق { $user } على دعوتك وانضم إلى { $workspace } على WowChat { $role }.
accepted-member-button = عرض العضو الجديد
accepted-member-text = عرض العضو الجديد:
accepted-everyone = جميع أعضاء { $workspace }:
accepted-footer = وصلتك هذه الرسالة لأنك دعوت { $user } للانضمام إلى { $workspace } على WowChat.

## The join request confirmation

confirmation-subject = يُرجى تأكيد طلب انضمامك إلى { $workspace } على WowChat
confirmation-heading = تأكيد طلب انضمامك إلى { $workspace }
# $requester: a name, with the email address in brackets when it differs.
confirmation-asked = طلب شخص ما، ربما أنت، الانضمام إلى { $workspace } على WowChat باسم { $requester }.
confirmation-why = يُرجى تأكيد الطلب ليطّلع عليه مسؤولو { $workspace }.
confirmation-why-text = يُرجى تأكيد الطلب ليطّلع عليه مسؤولو { $workspace }:
confirmation-button = تأكيد الطلب
confirmation-next = يقرر المسؤولون ما إذا كانوا سيدعونك؛ وإذا فعلوا، فستصلك رسالة دعوة بالبريد الإلكتروني.
confirmation-expires = الرابط صالح حتى { $expires } (UTC).
confirmation-footer = وصلتك هذه الرسالة لأن { $requester } ورد في طلب للانضمام إلى { $workspace } على WowChat. إذا لم يكن الطلب منك، فيمكنك تجاهل هذه الرسالة: لن يحدث شيء ما لم يتم تأكيد الطلب.

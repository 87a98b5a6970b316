# The invitation page (GET /invite on the gateway). Placeholders ($name)
# are filled in by the page: keep them, never translate them. `WowChat`
# is the product's name.

page-title = قبول دعوتك · WowChat
brand = WowChat
noscript = تحتاج هذه الصفحة إلى JavaScript لقبول دعوتك. فعّل JavaScript لهذا الموقع، ثم افتح الرابط من رسالة البريد الإلكتروني مرة أخرى.
loading = جارٍ التحقق من دعوتك…
invite-heading = انضم إلى { $workspace } على WowChat
invite-from = تلقيت دعوة من { $inviter } للانضمام إلى { $workspace }.
invite-from_unknown = تلقيت دعوة للانضمام إلى { $workspace }.
invite-email = بريدك الإلكتروني
invite-role = دورك
invite-expires = الدعوة صالحة حتى
form-heading = أنشئ حسابك
form-display_name-label = اسمك
form-display_name-hint = الاسم الذي سيراك به زملاؤك: من 1 إلى 100 حرف.
form-password-label = اختر كلمة مرور
form-password-hint = من 8 إلى 128 حرفًا. بضع كلمات لا رابط بينها تصنع كلمة مرور طويلة وسهلة التذكر وصعبة التخمين.
form-submit = قبول الدعوة وإنشاء حسابي
form-submitting = جارٍ إنشاء حسابك…
field-display_name = أدخل اسمك: من 1 إلى 100 حرف.
field-password = اختر كلمة مرور من 8 إلى 128 حرفًا.
field-summary = يُرجى تصحيح الحقل المحدد أدناه.
success-heading = مرحبًا بك في { $workspace }!
success-body = حسابك جاهز. افتح WowChat وسجّل الدخول بالبريد الإلكتروني { $email } وكلمة المرور التي اخترتها للتو.
success-status = حسابك جاهز.
action-open_app = فتح WowChat
action-sign_in = تسجيل الدخول إلى WowChat
action-try_again = إعادة المحاولة
error-INVITATION_NOT_FOUND-heading = رابط الدعوة هذا لا يعمل
error-INVITATION_NOT_FOUND-body = ربما يكون الرابط غير مكتمل. افتحه مرة أخرى من رسالة الدعوة، أو انسخ الرابط كاملًا والصقه في شريط العناوين. إذا ظل لا يعمل، فاطلب دعوة جديدة من الشخص الذي دعاك.
error-INVITATION_EXPIRED-heading = انتهت صلاحية هذه الدعوة
error-INVITATION_EXPIRED-body = الدعوات صالحة لمدة محدودة. اطلب من الشخص الذي دعاك أن يرسل إليك دعوة جديدة.
error-INVITATION_REVOKED-heading = تم سحب هذه الدعوة
error-INVITATION_REVOKED-body = لم يعد بالإمكان استخدامها. إذا كنت لا تزال بحاجة إلى الوصول، فتواصل مع الشخص الذي دعاك.
error-INVITATION_ALREADY_ACCEPTED-heading = تم قبول هذه الدعوة من قبل
error-INVITATION_ALREADY_ACCEPTED-body = حسابك موجود بالفعل: سجّل الدخول بالبريد الإلكتروني وكلمة المرور اللذين اخترتهما عند قبول الدعوة.
error-USER_ALREADY_MEMBER-heading = أنت عضو بالفعل
error-USER_ALREADY_MEMBER-body = يوجد بالفعل حساب بهذا البريد الإلكتروني في مساحة العمل: سجّل الدخول بدلًا من ذلك.
error-INVITER_NOT_AUTHORIZED-heading = لم يعد بالإمكان استخدام هذه الدعوة
error-INVITER_NOT_AUTHORIZED-body = لم يعد بإمكان الشخص الذي دعاك إضافة أعضاء إلى مساحة العمل هذه. اطلب من مسؤول آخر في مساحة العمل أن يدعوك.
error-SEAT_LIMIT_REACHED-heading = مساحة العمل ممتلئة
error-SEAT_LIMIT_REACHED-body = جميع المقاعد مشغولة. اطلب من أحد مسؤولي مساحة العمل تحرير مقعد أو إضافة مقاعد، ثم افتح الرابط مرة أخرى.
error-USER_ACCESS_EXPIRED-heading = انتهى الوصول الذي تمنحه هذه الدعوة
error-USER_ACCESS_EXPIRED-body = اطلب دعوة جديدة من الشخص الذي دعاك.
error-INVITATION_ATTEMPTS_EXCEEDED-heading = محاولات كثيرة جدًا
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-INVITATION_ATTEMPTS_EXCEEDED-body = جرت محاولات كثيرة جدًا لاستخدام هذه الدعوة خلال وقت قصير. انتظر { $wait }، ثم أعد المحاولة.
error-busy-heading = WowChat مشغول حاليًا
# $wait: how long, in words the browser writes for the language ("30 seconds").
error-busy-body = انتظر { $wait }، ثم أعد المحاولة.
error-busy-body_no_wait = انتظر قليلًا، ثم أعد المحاولة.
error-unexpected-heading = حدث خطأ ما
error-unexpected-body = تعذّر التحقق من دعوتك أو قبولها الآن. أعد المحاولة بعد قليل، وإذا استمرت المشكلة، فتواصل مع الشخص الذي دعاك.
error-offline-heading = تعذّر الوصول إلى WowChat
error-offline-body = تحقق من اتصالك بالإنترنت، ثم أعد المحاولة.

# The built-in roles' names (a workspace's own roles show as it named them).
role-name-owner = المالك
role-name-admin = المسؤول
role-name-supervisor = المشرف
role-name-agent = الوكيل

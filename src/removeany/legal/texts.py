# ruff: noqa: E501, RUF001  (legal prose in English and Chinese: long lines, full-width punctuation)
"""The built-in versions of the Terms of Service and Privacy Policy, in English and Simplified
Chinese: version 1 (the first release) and version 2 (the privacy policy rewritten to say
everything the software keeps, for how long, and who else receives data).

Built in, so an installation has terms to accept without any setup; `legal.install` publishes
the newest built-in version where no operator text is in force (see `legal.service`). An
operator publishes later versions (with their own texts) through the admin API or CLI;
published versions are stored in `legal_versions` and never edited. Format: `## ` headings,
`- ` list items, blank lines between paragraphs. Placeholders are filled when a text is shown
(`legal.service.render`): `{operator}` is the site's address, and `{retention_hours}`,
`{mail_keep_sent_hours}`, `{mail_keep_failed_days}`, `{session_days}`,
`{password_reset_minutes}` and `{known_device_days}` are the site's settings of those names.
"""

from __future__ import annotations

from removeany.i18n import N_

# The summaries of what changed are the software's words, like the rest of the site's: they
# are in the catalogue (locales/zh_CN.json) and shown in the reader's language
# (`legal.service.summary_shown`). An operator's summary is shown as they wrote it.
VERSION_1_DATE = "2026-11-25"
VERSION_1_SUMMARY = N_("First version.")

TERMS_EN = """\
## 1. What this is
These terms govern your use of RemoveAny at {operator} (the "service"), run by its operator. By creating an account or using the service you agree to them. If you do not agree, do not use the service.

## 2. Your account
- You need an account with a verified email address. Keep your password secret; we store it only as an argon2id hash and offer two-factor authentication, which we recommend.
- You are responsible for what is done with your account and API keys. Tell us, or use the "this wasn't me" link in our security emails, as soon as you suspect misuse: it signs everyone out, revokes your keys and locks the account until you choose a new password.
- One person, one free account. Accounts are personal and may not be sold or shared.

## 3. The services
- The service offers image processing such as background removal, portrait cutout, watermark removal and batch processing. Results are produced automatically and may be imperfect; check them before you rely on them.
- The operator may add, change, limit, suspend or discontinue a service at any time, for example for maintenance, capacity, security or legal reasons. When a service is suspended or disabled we say so on the site and in API errors, and jobs that were refused cost nothing.

## 4. Credits
- Processing is paid in credits. Each job's price is shown before you submit it and is charged only when the job succeeds; a failed job costs nothing.
- Credits come free (for example on sign-up) or are bought. Each lot of credits has an expiry date shown in your account; unused credits expire on that date and are not refunded, paid or free.
- Credits have no cash value, cannot be transferred to another account, and are not refundable except where the law requires it or a payment was taken in error.

## 5. Your content
- You keep all rights to the images you upload and to the results. You give the operator only the permission needed to store and process them to provide the service to you.
- You may only upload images you have the right to use. Do not use the service to remove watermarks from, or otherwise infringe, other people's work, or for unlawful, abusive or harmful content.

## 6. Acceptable use
Do not attack, overload or probe the service, get around its limits, create accounts in bulk, or resell access without permission. Automated use through the API within your limits is welcome.

## 7. Enforcement
Administrators may restrict (no processing), ban (no sign-in; sessions and API keys revoked) or delete accounts that break these terms or endanger the service or others. Each such action is recorded with its reason in an audit log. Credits of a banned or deleted account are forfeited.

## 8. Privacy
Your data is used only to provide the service, and images are deleted on schedule or when you ask. The Privacy Policy, which is part of these terms, says exactly what we keep and for how long.

## 9. No warranty, limited liability
The service is provided as is. To the extent the law allows, the operator is not liable for indirect losses or for more than what you paid for the service in the twelve months before the claim.

## 10. Changes to these terms
These terms are versioned. When we publish a new version we tell you by email and on the site, and you must accept it before your next use of the services. Earlier versions stay readable on the site. You may close your account at any time instead.
"""

TERMS_ZH = """\
## 1. 适用范围
本条款适用于您对 {operator} 上的 RemoveAny（以下简称“本服务”）的使用，本服务由其运营方运营。注册账户或使用本服务即表示您同意本条款；如不同意，请勿使用本服务。

## 2. 您的账户
- 使用本服务需要一个已验证电子邮箱的账户。请妥善保管密码；我们仅以 argon2id 哈希形式保存密码，并提供两步验证，建议您开启。
- 您须对通过您的账户和 API 密钥进行的操作负责。一旦怀疑账户被滥用，请立即告知我们，或点击安全邮件中的“这不是我”链接：该操作会注销所有会话、吊销全部密钥，并锁定账户，直至您设置新密码。
- 每人仅可拥有一个免费账户。账户归个人使用，不得出售或共享。

## 3. 服务内容
- 本服务提供抠图（去除背景）、人像抠图、去水印及批量处理等图像处理功能。结果由程序自动生成，可能存在瑕疵，请在使用前自行核对。
- 运营方可随时因维护、容量、安全或法律等原因新增、调整、限制、暂停或停止某项服务。服务被暂停或停用时，我们会在网站和 API 错误信息中说明，被拒绝的任务不收取任何费用。

## 4. 点数
- 处理图像需消耗点数。每个任务的价格在提交前显示，仅在任务成功时扣除；失败的任务不收费。
- 点数可免费获得（例如注册赠送），也可购买。每批点数都有到期日并在账户中显示；到期未用的点数（无论免费或付费）将失效，且不予退款。
- 点数不具有现金价值，不可转让给其他账户，除法律另有规定或扣款有误外不予退还。

## 5. 您的内容
- 您对上传的图片及处理结果保留全部权利。您仅授予运营方为向您提供本服务所必需的存储和处理许可。
- 您只能上传您有权使用的图片。不得利用本服务去除他人作品的水印或以其他方式侵犯他人权利，也不得用于违法、滥用或有害的内容。

## 6. 合理使用
不得攻击、过载或探测本服务，不得规避其限制，不得批量注册账户，未经许可不得转售访问权限。欢迎在限额内通过 API 自动化使用。

## 7. 违规处理
对于违反本条款或危害本服务及他人的账户，管理员可以限制（禁止处理图像）、封禁（禁止登录，吊销会话和 API 密钥）或删除该账户。每项处理均连同原因记录在审计日志中。被封禁或删除账户的点数将被作废。

## 8. 隐私
您的数据仅用于提供本服务，图片会按计划或应您的要求删除。隐私政策是本条款的组成部分，详细说明我们保存哪些数据以及保存多久。

## 9. 免责与责任限制
本服务按现状提供。在法律允许的范围内，运营方不对间接损失承担责任，且赔偿总额不超过您在索赔前十二个月内为本服务支付的金额。

## 10. 条款变更
本条款设有版本。发布新版本时，我们会通过电子邮件和网站通知您，您须在下次使用服务前接受新版本。旧版本仍可在网站上查阅。您也可以随时注销账户。
"""

PRIVACY_EN = """\
## What we keep
- Account: your email address, a hash of your password, whether you use two-factor authentication, and when you accepted which version of the terms (with the IP address it came from).
- Security: your active sessions and API keys (with browser, IP address and time of last use), devices that have signed in, and counters of failed sign-ins. These protect your account.
- Images: the originals you upload and the results, for processing and download.
- Credits: the ledger of credits granted, bought, spent and expired.

## What we use it for
Only to provide the service: to sign you in, process your images, keep your credits, protect your account and the service, and send you emails about your account (security alerts, changes to these terms). No advertising, no profiling, no selling or sharing of data, and no third-party tracking or analytics: the site makes no calls to other services.

## How long we keep it
- Originals and results are deleted automatically after the retention period set by the operator (24 hours unless the site says otherwise), and at any time on request: each job has a "delete files" action.
- Metadata such as EXIF and GPS location is not copied into results.
- When you delete your account we erase your images, sessions, API keys, devices and personal details at once. The credit ledger is kept for accounting, anonymised: it no longer names you.

## Your rights
You can download all your data (a ZIP of JSON records and your stored images) from your account page, correct your email address, and delete your account. Ask the operator about anything else.

## Security
Passwords are hashed with argon2id; sign-ins are rate-limited; two-factor authentication and recovery codes are available; we email you about new devices and credential changes.

## Changes
This policy is versioned with the Terms of Service; we notify you of new versions.
"""

PRIVACY_ZH = """\
## 我们保存哪些数据
- 账户：您的电子邮箱、密码的哈希值、是否开启两步验证，以及您在何时（从哪个 IP 地址）接受了哪一版本的条款。
- 安全：您的活跃会话和 API 密钥（含浏览器、IP 地址和最近使用时间）、登录过的设备，以及登录失败次数计数。这些用于保护您的账户。
- 图片：您上传的原图和处理结果，用于处理和下载。
- 点数：赠送、购买、消耗和到期的点数账目。

## 我们如何使用这些数据
仅用于提供本服务：让您登录、处理您的图片、管理您的点数、保护您的账户和本服务，以及向您发送与账户相关的邮件（安全提醒、条款变更）。不投放广告，不做用户画像，不出售或共享数据，也没有任何第三方跟踪或统计：网站不会调用其他服务。

## 我们保存多久
- 原图和处理结果会在运营方设定的保留期后自动删除（除网站另有说明外为 24 小时），您也可以随时要求删除：每个任务都有“删除文件”操作。
- 处理结果不会复制 EXIF、GPS 位置等元数据。
- 注销账户时，我们会立即删除您的图片、会话、API 密钥、设备及个人信息。点数账目出于会计需要予以保留，但会匿名化，不再关联到您。

## 您的权利
您可以在账户页面下载您的全部数据（包含 JSON 记录和已存储图片的 ZIP 文件）、更正电子邮箱以及注销账户。其他事项请联系运营方。

## 安全
密码使用 argon2id 哈希；登录有频率限制；提供两步验证和恢复码；新设备登录和凭据变更时我们会发送邮件通知。

## 变更
本政策与服务条款一同设有版本；发布新版本时我们会通知您。
"""


# --- version 2 ------------------------------------------------------------------------------

VERSION_2_DATE = "2026-12-07"
VERSION_2_SUMMARY = N_(
    "The Privacy Policy now lists everything the service keeps and for how long (emails, "
    "sign-ins and devices, a previous email address, job history, orders and payments, the "
    "moderation audit log), with the periods set on this site, what account deletion removes, "
    "and who else receives data: Stripe when card payments are enabled, and the mail server. "
    "The terms' privacy section now points to that list; nothing else in the terms changed."
)

_PRIVACY_SECTION_V1_EN = """\
## 8. Privacy
Your data is used only to provide the service, and images are deleted on schedule or when you ask. The Privacy Policy, which is part of these terms, says exactly what we keep and for how long.
"""
_PRIVACY_SECTION_V2_EN = """\
## 8. Privacy
Your data is used only to provide the service, and images are deleted on schedule or when you ask. Some of it goes to the providers the service needs, for example Stripe when you pay by card. The Privacy Policy, which is part of these terms, says exactly what we keep, for how long, and who receives it.
"""
_PRIVACY_SECTION_V1_ZH = """\
## 8. 隐私
您的数据仅用于提供本服务，图片会按计划或应您的要求删除。隐私政策是本条款的组成部分，详细说明我们保存哪些数据以及保存多久。
"""
_PRIVACY_SECTION_V2_ZH = """\
## 8. 隐私
您的数据仅用于提供本服务，图片会按计划或应您的要求删除。部分数据会提供给本服务所需的服务商，例如您用银行卡付款时的 Stripe。隐私政策是本条款的组成部分，详细说明我们保存哪些数据、保存多久以及谁会收到这些数据。
"""


def _replaced(text: str, old: str, new: str) -> str:
    if old not in text:
        raise ValueError("the section to replace is not in the text")
    return text.replace(old, new)


# The terms of version 2 are version 1's with section 8 (Privacy) brought in line with the
# rewritten policy: everything else in them still holds.
TERMS_V2_EN = _replaced(TERMS_EN, _PRIVACY_SECTION_V1_EN, _PRIVACY_SECTION_V2_EN)
# The Chinese text also calls credits 积分, as the site does (version 1 said 点数).
TERMS_V2_ZH = _replaced(TERMS_ZH, _PRIVACY_SECTION_V1_ZH, _PRIVACY_SECTION_V2_ZH).replace(
    "点数", "积分"
)

PRIVACY_V2_EN = """\
## Who we are
This policy covers RemoveAny at {operator}, run by its operator ("we"). It says what personal data the service keeps, why, for how long, and who else receives it. The periods below are this site's settings: if the operator changes them, this page shows the new figures.

## What we keep and why
- Account: your email address, a hash of your password (argon2id), your preferred language, when the account was created and first signed in, and its status. To sign you in and run your account.
- Two-factor authentication, if you turn it on: the key of your authenticator app (stored encrypted) and hashes of your recovery codes.
- Terms: which version of these terms you accepted, when, and from which IP address and browser. To show what you agreed to.
- Security: your sign-ins (browser, IP address, last activity), your API keys (a hash, their name and first characters, last use), the devices that have signed in (browser and IP address), password reset links (a hash only), and counters of failed attempts kept per IP address or per hash of an email address. To protect your account: we email you when a new device signs in or your credentials change.
- A previous email address: when you change your address, the old one stays reserved for your account, so that the "this wasn't me" link we send to it can move the account back.
- Free credits: the mailbox you signed up with, so that each mailbox gets the free credits once, and for a day the network address the sign-up came from.
- Images: the originals you upload, the results, and any background photo or mask you send with a job. To process them and let you download the results.
- Job history: for each job and batch, the service, options, file name, sizes, status and cost. So you can see your work and we charge correctly.
- Credits and payments: the ledger of credits granted, bought, spent, expired and revoked; promo codes you redeemed; your orders (pack, amount, status and the payment provider's references); and the payment provider's messages about your orders, which include the name and email address given at checkout. For accounting.
- Emails we send you (confirmation and password reset links, security alerts, reminders about expiring credits, changes to these terms): the address, subject and status, and the text until it is sent.
- Moderation: when an administrator acts on your account (restricts, bans, reinstates it, grants or revokes credits, deletes it), an entry in the audit log with the time, the reason and the account's number.
- Trying the service on the home page without an account: the photo is processed and the preview sent back, and nothing of it is stored; only a count of tries per IP address, to limit them.

## What we use it for
Only to provide the service: to sign you in, process your images, keep your credits and orders, protect your account and the service, and send you emails about your account. No advertising, no profiling, no selling of data, and no third-party tracking or analytics: the pages load nothing from other sites. Images are processed by models that run on the operator's own servers.

## Who else receives data
- Card payments: if the operator has enabled card payments, buying credits sends your email address, the pack and its price to Stripe, whose checkout page takes your payment details (we never see your card). Stripe keeps that data under its own privacy policy and tells us whether the payment went through.
- Email: if the operator sends email through a mail server or an email provider, your address and the emails pass through it.
- Hosting: the operator's hosting and storage providers hold the data above on the operator's behalf.
- Nobody else, unless the law requires it.

## How long we keep it
- Originals, results, and a background photo or mask sent with a job: deleted {retention_hours} hours after the job was created, once it has finished, or earlier when you use the job's "delete files" action. Results carry no EXIF or GPS metadata unless you ask to keep it.
- Emails: the text is deleted when the email is sent or when we give up sending it; the record of a sent email (address, subject) {mail_keep_sent_hours} hours after sending, that of an email that could not be delivered {mail_keep_failed_days} days after we gave up. Where the site keeps each email as a file instead of using a mail server, the file is deleted {mail_keep_sent_hours} hours after it was written.
- Sign-ins: a day after they end (you sign out, or {session_days} days pass). Password reset links: a day after they expire ({password_reset_minutes} minutes after they were sent). Counters of failed attempts: a day after their time window.
- Devices that have signed in: {known_device_days} days after the last sign-in from them; after that a sign-in from the device is announced again.
- A previous email address: 14 days after the change.
- The network address of a free-credit sign-up: one day.
- Account details, two-factor settings, API keys, terms acceptances, and job and batch history: as long as the account exists.
- Credit ledger, orders and payment records: kept for accounting, also after the account is deleted, without naming you (see below).
- Audit log entries: kept permanently, as a record of what administrators did; they name accounts by number only, never by email address.
- Server logs (IP address, page asked for, no emailed links) are kept by the operator under their own log rotation, and copies in the operator's backups under their own schedule.

## When you delete your account
Deleted at once: your images, sign-ins, API keys, devices, two-factor settings, recovery codes, reset links, reserved addresses and every email to you, sent or waiting. Removed from what stays: the IP address and browser of your terms acceptances, the file and batch names of your jobs, and the name and email address in the payment provider's messages. Unspent credits are forfeited. What stays names no one (the account becomes "deleted-" and its number): the credit ledger, orders and amounts paid, job records without file names, the audit log, which versions of the terms were accepted and when, and a one-way hash of your email address, so the same mailbox gets no second free credits. We email a confirmation to your address; that email is kept like any other sent email.

## Your rights
You can download all your data (a ZIP of JSON records and your stored images) from your account page, correct your email address, delete any job's files, and delete your account. Ask the operator about anything else.

## Security
Passwords are hashed with argon2id; sign-ins are rate-limited; two-factor authentication and recovery codes are available; we email you about new devices and credential changes.

## Changes
This policy is versioned with the Terms of Service. When a new version is published we tell you by email and on the site, and you are asked to accept it before you next use the services. Earlier versions stay readable on the site.
"""

PRIVACY_V2_ZH = """\
## 我们是谁
本政策适用于 {operator} 上由其运营方（以下简称“我们”）运营的 RemoveAny，说明本服务保存哪些个人数据、为何保存、保存多久，以及还有谁会收到这些数据。下文所列期限均为本站的设置：运营方如有调整，本页面会显示新的数值。

## 我们保存哪些数据及原因
- 账户：您的电子邮箱、密码的哈希值（argon2id）、您选择的语言、账户的创建时间和首次登录时间，以及账户状态。用于让您登录和管理您的账户。
- 两步验证（如您开启）：身份验证器应用的密钥（加密保存）和恢复码的哈希值。
- 条款：您接受了哪一版本的条款、接受时间，以及当时的 IP 地址和浏览器。用于证明您同意的内容。
- 安全：您的登录会话（浏览器、IP 地址、最近活动时间）、API 密钥（哈希值、名称、开头几个字符、最近使用时间）、登录过的设备（浏览器和 IP 地址）、密码重置链接（仅哈希值），以及按 IP 地址或电子邮箱哈希值记录的失败次数计数。用于保护您的账户：新设备登录或凭据变更时我们会发邮件通知您。
- 旧电子邮箱：您更改邮箱后，旧邮箱会为您的账户保留一段时间，以便我们发到旧邮箱的“这不是我”链接能把账户改回原邮箱。
- 免费积分：您注册时使用的邮箱（每个邮箱只能领取一次免费积分），以及注册时的网络地址（仅保存一天）。
- 图片：您上传的原图、处理结果，以及随任务提交的背景图片或蒙版。用于处理图片和供您下载结果。
- 任务记录：每个任务和批量任务的服务类型、选项、文件名、大小、状态和费用。便于您查看自己的处理记录，也便于我们正确计费。
- 积分与付款：赠送、购买、消耗、到期和收回的积分账目；您使用过的优惠码；您的订单（套餐、金额、状态及支付服务商的参考编号）；以及支付服务商关于您订单的消息，其中包含结账时填写的姓名和电子邮箱。用于会计记账。
- 我们发给您的邮件（确认和密码重置链接、安全提醒、积分即将到期提醒、条款变更通知）：收件地址、主题和状态，以及发送前的正文。
- 管理记录：管理员对您的账户采取措施（限制、封禁、恢复、赠送或收回积分、删除）时，审计日志中会记录时间、原因和账户编号。
- 未注册时在首页试用：照片经处理后返回预览，不会保存任何内容；仅按 IP 地址记录试用次数，用于限制次数。

## 我们如何使用这些数据
仅用于提供本服务：让您登录、处理您的图片、管理您的积分和订单、保护您的账户和本服务，以及向您发送与账户相关的邮件。不投放广告，不做用户画像，不出售数据，也没有任何第三方跟踪或统计：网页不会从其他网站加载任何内容。图片由运行在运营方自有服务器上的模型处理。

## 还有谁会收到数据
- 银行卡付款：如果运营方开通了银行卡付款，购买积分时您的电子邮箱、所购套餐及价格会发送给 Stripe，由 Stripe 的结账页面收取您的付款信息（我们不会看到您的银行卡信息）。Stripe 依照其自身的隐私政策保存这些数据，并告知我们付款是否成功。
- 邮件：如果运营方通过邮件服务器或邮件服务商发送邮件，您的邮箱地址和邮件内容会经过该服务器或服务商。
- 托管：运营方的托管和存储服务商代表运营方保存上述数据。
- 除法律要求外，不会提供给其他任何人。

## 我们保存多久
- 原图、处理结果以及随任务提交的背景图片或蒙版：任务完成后，在任务创建 {retention_hours} 小时后删除；您也可以通过任务的“删除文件”操作提前删除。除非您要求保留，处理结果不包含 EXIF、GPS 位置等元数据。
- 邮件：邮件发出或放弃发送时即删除正文；已发送邮件的记录（收件地址、主题）在发送 {mail_keep_sent_hours} 小时后删除，无法投递的邮件记录在放弃发送 {mail_keep_failed_days} 天后删除。如本站不使用邮件服务器、而是把每封邮件保存为文件，该文件在写入 {mail_keep_sent_hours} 小时后删除。
- 登录会话：结束（您退出登录，或满 {session_days} 天）一天后删除。密码重置链接：失效（发出 {password_reset_minutes} 分钟后）一天后删除。失败次数计数：在其统计时段结束一天后删除。
- 登录过的设备：自该设备最后一次登录起 {known_device_days} 天后删除；此后该设备再次登录时会重新通知您。
- 旧电子邮箱：更改邮箱 14 天后删除。
- 领取免费积分时的网络地址：一天。
- 账户信息、两步验证设置、API 密钥、条款接受记录以及任务和批量任务记录：在账户存续期间保存。
- 积分账目、订单和付款记录：出于会计需要予以保留，账户注销后也会保留，但不再关联到您（见下文）。
- 审计日志：作为管理员操作的记录永久保存；其中仅以编号记录账户，从不记录电子邮箱。
- 服务器日志（IP 地址、访问的页面，不含邮件中的链接）由运营方按其日志轮换规则保存；运营方备份中的副本按其自身的计划删除。

## 注销账户时
立即删除：您的图片、登录会话、API 密钥、设备、两步验证设置、恢复码、重置链接、保留的旧邮箱，以及发给您的所有邮件（无论已发送或待发送）。从保留的记录中删除：条款接受记录中的 IP 地址和浏览器、任务中的文件名和批量任务名称，以及支付服务商消息中的姓名和电子邮箱。未使用的积分将被作废。保留下来的记录不再指向任何人（账户变为“deleted-”加编号）：积分账目、订单及付款金额、不含文件名的任务记录、审计日志、接受过哪些条款版本及接受时间，以及您电子邮箱的单向哈希值（同一邮箱不能再次领取免费积分）。我们会向您的邮箱发送一封确认邮件，该邮件与其他已发送邮件一样保存。

## 您的权利
您可以在账户页面下载您的全部数据（包含 JSON 记录和已存储图片的 ZIP 文件）、更正电子邮箱、删除任一任务的文件以及注销账户。其他事项请联系运营方。

## 安全
密码使用 argon2id 哈希；登录有频率限制；提供两步验证和恢复码；新设备登录和凭据变更时我们会发送邮件通知。

## 变更
本政策与服务条款一同设有版本。发布新版本时，我们会通过电子邮件和网站通知您，您须在下次使用服务前接受新版本。旧版本仍可在网站上查阅。
"""

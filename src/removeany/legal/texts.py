# ruff: noqa: E501, RUF001  (legal prose in English and Chinese: long lines, full-width punctuation)
"""Version 1 of the Terms of Service and Privacy Policy, in English and Simplified Chinese.

Built in, so a fresh installation has terms to accept without any setup. An operator publishes
later versions (with their own texts) through the admin API or CLI; published versions are
stored in `legal_versions` and never edited. Format: `## ` headings, `- ` list items, blank
lines between paragraphs. `{operator}` is replaced by the site's address.
"""

from __future__ import annotations

VERSION_1_DATE = "2026-11-25"
VERSION_1_SUMMARY = "First version."

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

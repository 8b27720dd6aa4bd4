"""The terms of use a user signs before the first query (§10-§11, R6): the default text.

Its own module because it is mostly Russian (``ruff``'s confusable-letter check is off
here only). ``[policy] consent_text`` / ``consent_version`` replace it; the version
must change whenever the text does (a user's consent names the version and the SHA-256
of the text, and only a consent to the current version counts).
"""

from __future__ import annotations

#: The consent's version id. A user signs the version and the SHA-256 of its text; a
#: new version needs a new signature from every user (R6). Change it whenever the text
#: changes ("2026-1" was the first, one-sentence text).
DEFAULT_CONSENT_VERSION = "2026-2"
#: The terms of use (§10: the form of appendix 6 to Rules No. 21): each obligation of the
#: user in the rules' own words (§3, §12, §17, §19-§21 of the Rules), in Russian, then an
#: English rendering. The Russian text is the one that binds.
DEFAULT_CONSENT_TEXT = """\
СОГЛАСИЕ на условия использования СИО ПСО (версия 2026-2)

Я, пользователь уполномоченного органа по финансовому мониторингу, принимаю условия
использования системы информационного обмена правоохранительных, специальных
государственных и иных органов (СИО ПСО) и обязуюсь:

1. Не передавать средства ЭЦП (ключ подписи и пароль к нему) другим лицам. В случае
   утери ЭЦП незамедлительно отозвать её через личный кабинет Национального
   удостоверяющего центра Республики Казахстан.
2. Периодически, но не менее одного раза в месяц менять пароль к ЭЦП.
3. Обеспечивать обоснованность каждого запроса и использовать полученную информацию
   исключительно в целях, заявленных в запросе.
4. Соблюдать законодательство о персональных данных и их защите, требования по защите
   государственной, служебной, коммерческой и иных охраняемых законом тайн; обеспечивать
   конфиденциальность полученной информации, приобщать её к соответствующим материалам и
   незамедлительно уничтожать электронные копии, загруженные на локальное устройство.
5. Я предупреждён(а), что при нарушении этих требований доступ к СИО ПСО блокируется, а
   я несу ответственность, предусмотренную законодательством Республики Казахстан.

CONSENT to the terms of use of the IES (version 2026-2) -- English rendering

I, a user of the authorised body for financial monitoring, accept the terms of use of
the information exchange system of law enforcement, special state and other bodies
(IES) and undertake:

1. Not to hand my electronic signature (the signature key and its password) to anyone.
   If it is lost, to revoke it at once through my account at the National Certification
   Authority of the Republic of Kazakhstan.
2. To change the password of my signature key periodically, at least once a month.
3. To justify every query, and to use what I obtain only for the purpose stated in the
   query.
4. To comply with the law on personal data and its protection and to protect state,
   official, commercial and other secrets protected by law; to keep what I obtain
   confidential, attach it to the case materials and destroy at once the electronic
   copies downloaded to a local device.
5. I am warned that a breach of these requirements blocks my access to the IES and that
   I bear the liability the law of the Republic of Kazakhstan provides.
"""

__all__ = ["DEFAULT_CONSENT_TEXT", "DEFAULT_CONSENT_VERSION"]

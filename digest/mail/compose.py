"""Turn a rendered mail into the ``OutgoingMail`` a transport sends.

One place decides the sender, the shared headers (List-Id), the edition's view-in-browser
link, the token-free fallbacks and the SendGrid tags, so delivery, confirmation and welcome
mails all leave with the same headers. Each reader's List-Unsubscribe comes with their
``Recipient`` (``digest.mail.links.recipient_for``). The subject is decoded and cleaned here once
(``digest.mail.message.header_text``), so every transport, SendGrid included, gets the same
header-safe text.
"""

from __future__ import annotations

from digest.config import Settings
from digest.mail.links import archive_url, generic_substitutions, list_id
from digest.mail.message import OutgoingMail, header_text, personalize
from digest.mail.render import ARCHIVE_PLACEHOLDER, RenderedEdition


def outgoing_mail(
    settings: Settings,
    rendered: RenderedEdition,
    *,
    edition_id: int | None = None,
    category: str = "digest",
) -> OutgoingMail:
    """The shared message for every reader of ``rendered`` (placeholders kept for readers)."""
    edition_link = {ARCHIVE_PLACEHOLDER: archive_url(settings, edition_id)}
    custom_args = {"kind": category}
    if edition_id is not None:
        custom_args["edition_id"] = str(edition_id)
    return OutgoingMail(
        subject=header_text(personalize(rendered.subject, edition_link)),
        html=personalize(rendered.html, edition_link),
        text=personalize(rendered.text, edition_link),
        from_email=settings.from_email,
        from_name=header_text(settings.from_name),
        reply_to=settings.reply_to,
        headers={"List-Id": list_id(settings)},
        custom_args=custom_args,
        categories=(category,),
        fallbacks=generic_substitutions(settings, edition_id),
    )

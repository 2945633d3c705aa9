"""Sample posts and a helper that turns a rendered mail into a parsed .eml, for mail tests."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from digest.config import Settings
from digest.mail.compose import outgoing_mail
from digest.mail.links import recipient_for
from digest.mail.render import FeedSection, PostView, RenderedEdition
from digest.mail.transports.outbox import OutboxTransport
from digest.tokens import Tokens

LEAD_TITLE = "Russia-West Negotiations Start"
LEAD_LINK = "https://diplomaticopinion.com/2022/01/10/russia-west-negotiations-start/"


def sample_posts(count: int = 3) -> list[PostView]:
    """A lead post like the demo's, then ``count - 1`` ordinary ones, newest first."""
    posts = [
        PostView(
            title=LEAD_TITLE,
            link=LEAD_LINK,
            summary=(
                "Talks between Russia and the United States open in Geneva this week, "
                "followed by meetings with NATO and the OSCE. The positions are far apart, "
                "and the question is whether diplomacy can still lower the tension."
            ),
            thumbnail_url="https://diplomaticopinion.com/wp-content/uploads/2022/01/geneva.jpg",
            reading_minutes=6,
            published_at=datetime(2022, 1, 10, 9, 14, tzinfo=UTC),
        )
    ]
    for i in range(1, count):
        posts.append(
            PostView(
                title=f"Notes on foreign policy, part {i}",
                link=f"https://diplomaticopinion.com/2022/01/0{1 + i % 9}/notes-{i}/",
                summary=(
                    "A look back at the week's diplomatic news, with a few thoughts on what "
                    "the coming months may bring for the region and its neighbours. "
                ) * 2,
                reading_minutes=3 + i % 5,
                published_at=datetime(2022, 1, max(1, 9 - i % 9), 8, 0, tzinfo=UTC),
            )
        )
    return posts


def sample_sections(count: int = 3) -> list[FeedSection]:
    return [FeedSection("Diplomatic Opinion", "https://diplomaticopinion.com", sample_posts(count))]


def write_eml(
    settings: Settings,
    rendered: RenderedEdition,
    directory: Path,
    *,
    email_address: str = "reader@example.com",
    name: str | None = None,
    subscriber_id: int = 7,
    edition_id: int | None = 1,
) -> Path:
    """Send ``rendered`` to one reader through the outbox; the path of the .eml written."""
    tokens = Tokens(settings.secret_key.get_secret_value())
    mail = outgoing_mail(settings, rendered, edition_id=edition_id)
    reader = recipient_for(settings, tokens, subscriber_id, email_address, name,
                           link_key="k3yOfTheSampleRdr")
    OutboxTransport(directory, settings.sending_domain).send_batch(mail, [reader])
    (path,) = sorted(directory.glob("*.eml"))
    return path


def parse_eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """The decoded (text, html) parts of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())

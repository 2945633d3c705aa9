"""Summaries: what a reader sees for each post in the digest."""

from __future__ import annotations

from digest.feeds.summaries import html_to_text, reading_minutes, summarize, thumbnail, truncate

PIXEL = (
    '<img alt="" border="0" src="https://pixel.wp.com/b.gif?host=example.org&#038;post=1" '
    'width="1" height="1" />'
)


def test_tags_scripts_styles_and_pixels_never_reach_the_text():
    html = (
        "<style>p { color: red }</style><p>Hello <b>world</b>.</p>"
        "<script>alert('x')</script><noscript>enable js</noscript>"
        f"<p>Second&nbsp;paragraph &amp; more.</p>{PIXEL}"
    )
    summary = summarize(html)
    assert summary.text == "Hello world. Second paragraph & more."
    assert summary.thumbnail_url is None


def test_paragraphs_do_not_glue_words_together():
    assert html_to_text("<p>one</p><p>two</p><ul><li>three</li><li>four</li></ul>") == (
        "one two three four"
    )


def test_wordpress_endings_are_removed():
    assert html_to_text("The talks open this week [&#8230;]") == "The talks open this week"
    assert html_to_text(
        '<p>Body text.</p><p><a href="/x">Continue reading <span>The title</span> →</a></p>'
    ) == "Body text."
    assert html_to_text(
        "<p>Body text.</p><p>The post <a href='/x'>Hello</a> appeared first on "
        "<a href='/'>My Blog</a>.</p>"
    ) == "Body text."


def test_long_text_is_cut_at_a_sentence_end_near_the_limit():
    text = " ".join(["word"] * 40) + ". " + " ".join(["more"] * 40) + "."
    cut = truncate(text, 55)
    assert cut.endswith("word.")
    assert len(cut.split()) == 40


def test_long_text_without_sentences_is_cut_at_a_word_boundary():
    text = " ".join(f"w{i}" for i in range(200))
    cut = truncate(text, 55)
    assert cut == " ".join(f"w{i}" for i in range(55)) + " …"


def test_word_count_is_configurable():
    text = " ".join(f"w{i}" for i in range(200))
    assert len(summarize(f"<p>{text}</p>", words=10).text.split()) == 11  # 10 words and "…"


def test_short_text_is_kept_whole():
    assert truncate("Short and sweet.", 55) == "Short and sweet."


def test_chinese_text_is_cut_by_characters():
    text = "这是一个句子。" * 100
    cut = truncate(text, 55)
    assert 50 < len(cut) <= 165
    assert cut.endswith("。")


def test_thumbnail_prefers_media_thumbnail_then_a_real_content_image():
    content = (
        '<img src="https://0.gravatar.com/avatar/abc?s=96" width="96" height="96">'
        + PIXEL
        + '<img src="https://blog.example.org/photo.jpg" width="640">'
    )
    assert thumbnail(content) == "https://blog.example.org/photo.jpg"
    chosen = summarize(content, media_thumbnail="https://cdn.example.org/featured.jpg")
    assert chosen.thumbnail_url == "https://cdn.example.org/featured.jpg"


def test_thumbnail_ignores_pixels_and_unsafe_urls():
    assert thumbnail(PIXEL) is None
    assert thumbnail('<img src="javascript:alert(1)">') is None
    assert thumbnail('<img src="https://x.example/a.gif" width="1" height="1">') is None


def test_reading_time_grows_with_length():
    assert reading_minutes("word " * 10) == 1
    assert reading_minutes("word " * 2300) == 10


def test_description_is_used_when_there_is_no_content():
    summary = summarize("", "An excerpt that stands in for the body [&#8230;]")
    assert summary.text == "An excerpt that stands in for the body"


def test_text_without_spaces_is_still_cut():
    assert len(truncate("x" * 10_000, 55)) <= 55 * 12 + 1

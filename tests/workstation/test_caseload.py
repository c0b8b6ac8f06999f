"""The desk over 10,000 submissions: pages with counts that keep their filters
and order, rows that say what each submission is, and a search that finds
every form of a Ukrainian word (through the Flask test client; the same in a
browser is in test_desk_browser.py)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

import pytest

from intake.workstation.desk import create_vault_app

ROW = re.compile(r'href="/submission/([0-9a-f]{32})" class="sid"')
COUNT = re.compile(r'<p class="count" id="count">(\d+) submissions?: (\d+) to (\d+) shown, '
                   r'page (\d+) of (\d+)</p>')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
MARK = re.compile(r"<mark>(.*?)</mark>")


@pytest.fixture(scope="module")
def client(caseload):
    return create_vault_app(caseload.root, actor="tester").test_client()


def walk(client, url: str) -> tuple[int, list[str], list[str]]:
    """Follows the Next links from `url`: (the count shown, every row's id, every page's html)."""
    ids, pages, total = [], [], None
    while url:
        text = client.get(url).get_data(as_text=True)
        pages.append(text)
        count = COUNT.search(text)
        total = int(count.group(1)) if count else 0
        ids += ROW.findall(text)
        nxt = NEXT.search(text)
        url = html.unescape(nxt.group(1)) if nxt else ""
    return total, ids, pages


def test_the_first_page_counts_everything_and_stops_nowhere(client, caseload):
    text = client.get("/").get_data(as_text=True)
    total, first, last, page, pages = map(int, COUNT.search(text).groups())
    assert (total, first, last, page, pages) == (10_000, 1, 50, 1, 200)
    assert len(ROW.findall(text)) == 50
    last_page = client.get("/?page=200").get_data(as_text=True)
    assert COUNT.search(last_page).group(2, 3) == ("9951", "10000")
    assert len(ROW.findall(last_page)) == 50
    assert COUNT.search(client.get("/?page=999").get_data(as_text=True)).group(4) == "200"


def test_pages_keep_filters_and_order_and_cover_each_row_once(client, caseload):
    total, ids, pages = walk(client, "/?language=be&status=new&sort=oldest")
    assert total == len(ids) == len(set(ids)) > 50
    for text in pages:
        days = re.findall(r"<tr>\s*<td>(\d{4}-\d\d-\d\d)</td>", text)
        assert days == sorted(days)
        assert "Belarusian" in text
    with create_vault_app(caseload.root).app_context():
        from intake.workstation.vault import Vault

        with Vault(caseload.root) as vault:
            expected = {r[0] for r in vault.conn.execute(
                "SELECT submission_id FROM submissions WHERE language = 'be' AND status = 'new'")}
    assert set(ids) == expected
    nxt = NEXT.search(pages[0]).group(1)
    query = parse_qs(urlparse(html.unescape(nxt)).query)
    assert query == {"language": ["be"], "status": ["new"], "sort": ["oldest"], "page": ["2"]}


def test_each_row_tells_what_the_submission_is(client, caseload):
    text = client.get("/?flagged=yes").get_data(as_text=True)
    assert int(COUNT.search(text).group(1)) > 0
    row = text.split("<tbody>")[1].split("</tr>")[0]
    assert re.search(r'<p class="snippet"[^>]*>[^<]{20,}', row)  # the testimony's opening
    assert 'href="/witness/' in row and re.search(r"\d+ of \d+", row)   # its thread
    assert re.search(r"\d+ files?", row)                          # its files
    assert "not sanitized: the cleaner timed out" in row          # the sanitizer's flag
    assert re.search(r"Ukrainian|Russian|Belarusian|English", row)


def test_a_ukrainian_search_finds_every_form_of_the_word(client, caseload):
    total, ids, pages = walk(client, "/?query=дитина")
    assert total == len(ids) == len(caseload.child_uk)
    assert set(ids) == caseload.child_uk
    marked = {m.casefold() for text in pages for m in MARK.findall(text)}
    assert {"дитини", "дітей"} <= marked
    assert marked <= {"дитина", "дитини", "дитину", "дитиною", "діти", "дітей", "дітьми"}
    assert walk(client, "/?query=дітей")[1] == ids  # any form finds the same


def test_search_combines_with_filters_and_sorts_by_best_match(client, caseload):
    total, ids, _ = walk(client, "/?query=дитина&status=new&sort=relevance")
    assert 0 < total < len(caseload.child_uk) and len(ids) == total


def test_the_generated_vault_is_one_the_hardened_vault_accepts(caseload):
    """Written by the importer's own code: at the current schema, every custody
    entry signed by the custody key the team key made, each submission's items
    listed, the files the safe reader would read marked as it would mark them."""
    from click.testing import CliRunner

    from intake.cli import main
    from intake.workstation import db
    from intake.workstation.vault import Vault

    result = CliRunner().invoke(main, [
        "vault", "verify-log", "--vault", str(caseload.root), "--key", str(caseload.key_file),
        "--passphrase-file", str(caseload.passphrase_file)])
    assert result.exit_code == 0, result.output
    assert "custody log intact" in result.output and "the custody key is the team's" in \
        result.output and "from before signing" not in result.output
    with Vault(caseload.root) as vault:
        conn = vault.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == conn.execute(
            "SELECT COUNT(*) FROM submission_items").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM items i LEFT JOIN submission_items s"
                            " ON s.item_id = i.item_id AND s.submission_id = i.submission_id"
                            " WHERE s.item_id IS NULL").fetchone()[0] == 0
        previews = dict(conn.execute(
            "SELECT i.detected_type, COUNT(p.item_id) FROM items i LEFT JOIN previews p"
            " ON p.item_id = i.item_id WHERE i.kind = 'file' GROUP BY i.detected_type"))
        assert previews["image/jpeg"] > 0 and previews["application/pdf"] > 0
        assert previews["video/mp4"] == previews["text/plain"] == 0

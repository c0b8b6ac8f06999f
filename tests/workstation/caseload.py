"""A vault with a real caseload, made fast: thousands of submissions in four
languages, witness threads with follow-ups and replies, files with sanitizer
flags, a case.

Going through the witness form and `intake vault import` for 10,000
submissions would take many minutes (a codename's Argon2id, an fsync per
item), so the rows are written directly, in one transaction, by the
importer's own code: each item's sealed metadata is checked as an import
checks it (sealed.check), and importer.record_item writes its rows: the
submission and the items it lists, each text's language (lingua) and search
row (the lemmas and stems), worked out here (text_analysis.analyse_here, which
the import's text child runs), and the import's
custody entry, signed with the vault's custody key (opened with the team
key, as `--key` opens it). Files are random bytes, so the safe reader would
find them broken: each file it would have read gets that preview row. The
replies are written by replies.write_reply (sealed to the witness and to the
team for real). The vault is at the current schema version, and
`intake vault verify-log` passes on it. Testimonies are made of sentences written in each
language, a few with forms of "child" (дитина, дитини, дітей...), and the
result says which submissions have them, so that tests can count exactly.

    python tests/workstation/caseload.py VAULT [--submissions 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nacl import pwhash
from nacl.public import PrivateKey

from intake.format import teamkeys
from intake.format.bundle import Entry
from intake.format.teamkeys import b64
from intake.workstation import cases, custody, importer, replies, sealed, triage
from intake.workstation.text_analysis import analyse_here
from intake.workstation.vault import Vault

PASSPHRASE = "caseload passphrase, not secret"
CHILD_FORMS_UK = ("дитина", "дитини", "дитину", "дитиною", "діти", "дітей", "дітьми", "дітям")

SENTENCES = {
    "uk": [
        "Ми були вдома, коли почався обстріл.", "Снаряд влучив у сусідній будинок.",
        "Вони забрали мого брата вночі.", "Біля школи стояли три танки.",
        "Я чув вибухи зранку до вечора.", "Нас тримали в підвалі дванадцять днів.",
        "Солдати перевіряли телефони на блокпосту.", "Лікарню зруйнували повністю.",
        "Світла та води не було три тижні.", "Сусіда вивели на вулицю і побили.",
        "Тіла лежали на дорозі кілька днів.", "Міст підірвали, коли люди виїжджали.",
        "Мого чоловіка досі не знайшли.", "Окупанти вивозили зерно вантажівками.",
        "Вибух пролунав о шостій ранку.", "Ми три дні сиділи без їжі.",
    ],
    "ru": [
        "Мы были дома, когда начался обстрел.", "Снаряд попал в соседний дом.",
        "Они забрали моего брата ночью.", "Возле школы стояли три танка.",
        "Я слышал взрывы с утра до вечера.", "Нас держали в подвале двенадцать дней.",
        "Солдаты проверяли телефоны на блокпосту.", "Больницу разрушили полностью.",
        "Света и воды не было три недели.", "Соседа вывели на улицу и избили.",
        "Мост взорвали, когда люди уезжали.", "Оккупанты вывозили зерно грузовиками.",
        "Детей увезли на автобусах.", "Ребёнок плакал всю ночь.",
    ],
    "be": [
        "Мы былі дома, калі пачаўся абстрэл.", "Снарад трапіў у суседні дом.",
        "Яны забралі майго брата ўначы.", "Каля школы стаялі тры танкі.",
        "Я чуў выбухі з раніцы да вечара.", "Нас трымалі ў падвале дванаццаць дзён.",
        "Салдаты правяралі тэлефоны на блокпосце.", "Бальніцу разбурылі цалкам.",
        "Святла і вады не было тры тыдні.", "Мост узарвалі, калі людзі выязджалі.",
        "Дзеці хаваліся ў склепе.",
    ],
    "en": [
        "We were at home when the shelling began.", "A shell hit the house next door.",
        "They took my brother at night.", "Three tanks stood by the school.",
        "We heard explosions from morning till evening.", "The hospital was destroyed.",
        "There was no power or water for three weeks.", "The bridge was blown up.",
    ],
}
CHILD_SENTENCES_UK = [
    "Дитини не було вдома, коли прийшли солдати.", "Вони вивезли дітей автобусом.",
    "Я сховала дитину в погребі.", "Сусідка залишилася з дітьми без води.",
]
PLACES = ["Харків", "Херсон", "Ізюм", "Буча", "Маріуполь", "Гомель", "Мінск", "Kherson"]
FILE_TYPES = [("image/jpeg", "photo.jpg"), ("video/mp4", "clip.mp4"),
              ("application/pdf", "scan.pdf"), ("audio/ogg", "voice.ogg"),
              ("text/plain", "notes.txt")]
FLAG = "not sanitized: the cleaner timed out"
LANG_SHARE = (("uk", 0.4), ("ru", 0.3), ("be", 0.15), ("en", 0.15))
FIRST_DAY = dt.date(2026, 1, 1)


@dataclass
class Caseload:
    root: Path
    key_file: Path
    passphrase_file: Path
    submissions: int
    by_language: dict[str, int]           # generated language -> submissions
    detected: dict[str, int]              # detected language -> submissions
    child_uk: set[str] = field(default_factory=set)   # submissions with a form of дитина
    threads: dict[str, list[str]] = field(default_factory=dict)   # witness -> submissions
    replied: dict[str, str] = field(default_factory=dict)         # witness -> reply text
    case: str = "Kharkiv school"
    flagged: int = 0
    seconds: float = 0.0


def _pick_language(rng: random.Random) -> str:
    x, acc = rng.random(), 0.0
    for lang, share in LANG_SHARE:
        acc += share
        if x < acc:
            return lang
    return "en"


def _testimony(rng: random.Random, lang: str, child: bool) -> str:
    parts = rng.sample(SENTENCES[lang], k=rng.randint(2, 4))
    if child:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(CHILD_SENTENCES_UK))
    parts.append(f"{rng.choice(PLACES)}, {rng.randint(1, 120)}.")
    return " ".join(parts)


@dataclass
class _Item:
    kind: str
    data: bytes
    detected_type: str
    name: str
    flags: list[str]
    text: str | None
    item_id: str = field(default_factory=lambda: secrets.token_hex(16))


def _record(conn, vault: Vault, listed: dict[str, list[str]], sid: str, witness_id: str,
            day: str, it: _Item, bundle_id: str) -> None:
    """One item as `intake vault import` keeps it: its bytes in VAULT/items, its
    sealed metadata checked, its rows written by the importer's own code."""
    vault.items.write_new(it.item_id, it.data)
    sha = hashlib.sha256(it.data).hexdigest()
    envelope_sha = hashlib.sha256(b"envelope" + it.data).hexdigest()
    meta = {"format": sealed.ITEM_FORMAT, "kind": it.kind, "item_id": it.item_id,
            "submission_id": sid, "witness_id": witness_id, "received_day": day,
            "original_name": it.name, "detected_type": it.detected_type,
            "size": len(it.data), "sha256_received": sha, "sha256_kept": sha,
            "sanitizer": None, "removed": [], "sanitized": not it.flags, "flags": it.flags,
            "original_kept": False, "choices": {"keep_original": False}}
    item = sealed.check(meta, Entry(it.item_id, sid, witness_id, it.kind, len(it.data) + 64,
                                    envelope_sha, day))
    text = None if it.text is None else analyse_here(it.text)
    importer.record_item(conn, listed, item, envelope_sha, len(it.data), text, bundle_id)
    if importer.job_for(item) is not None:  # what the safe reader makes of random bytes
        conn.execute("INSERT INTO previews (item_id, state, reason) VALUES (?, 'none',"
                     " 'broken')", (it.item_id,))


def _fill(conn, vault: Vault, load: Caseload, rng: random.Random, bundle_id: str) -> int:
    """Every submission of the caseload; returns how many items were recorded."""
    witnesses: list[str] = []
    recorded = 0
    for n in range(load.submissions):
        # About one submission in four is a follow-up from a witness seen before.
        if witnesses and rng.random() < 0.25:
            witness_id = rng.choice(witnesses[-200:])
        else:
            witness_id = secrets.token_hex(16)
            witnesses.append(witness_id)
            conn.execute("INSERT INTO witnesses (witness_id, reply_public_key) VALUES (?, ?)",
                         (witness_id, b64(bytes(PrivateKey.generate().public_key))))
        sid = secrets.token_hex(16)
        lang = _pick_language(rng)
        child = lang == "uk" and rng.random() < 0.1
        text = _testimony(rng, lang, child)
        day = (FIRST_DAY + dt.timedelta(days=n * 90 // load.submissions)).isoformat()
        items = [_Item("testimony", text.encode(), "text/plain", "", [], text)]
        for _ in range(rng.choice((0, 0, 1, 2))):
            detected_type, name = rng.choice(FILE_TYPES)
            flags = [FLAG] if rng.random() < 0.05 else []
            load.flagged += bool(flags)
            if detected_type.startswith("text/"):
                note = f"Notes: {rng.choice(PLACES)}, {rng.randint(1, 120)}."
                items.append(_Item("file", note.encode(), detected_type, name, flags, note))
            else:
                items.append(_Item("file", secrets.token_bytes(64), detected_type, name,
                                   flags, None))
        listed = {sid: [it.item_id for it in items]}
        for it in items:
            _record(conn, vault, listed, sid, witness_id, day, it, bundle_id)
        recorded += len(items)
        conn.execute("UPDATE submissions SET status = ?, priority = ? WHERE submission_id = ?",
                     (rng.choice(triage.STATUSES[:4]), rng.choice((0, 1, 1, 1, 2, 3)), sid))
        detected = conn.execute("SELECT language FROM submissions WHERE submission_id = ?",
                                (sid,)).fetchone()[0]
        load.by_language[lang] = load.by_language.get(lang, 0) + 1
        load.detected[detected] = load.detected.get(detected, 0) + 1
        load.threads.setdefault(witness_id, []).append(sid)
        if child:
            load.child_uk.add(sid)
    return recorded


def generate(root: Path, submissions: int = 10_000, seed: int = 18) -> Caseload:
    started = time.monotonic()
    rng = random.Random(seed)
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, key_file = teamkeys.generate("team", root / "team", PASSPHRASE.encode(), cheap)
    passfile = root / "team" / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    team_public = teamkeys.load_public_key(pub).public_key
    load = Caseload(root / "vault", key_file, passfile, submissions, {}, {})
    first_day = FIRST_DAY
    team_key = teamkeys.load_private_key(key_file, PASSPHRASE.encode())
    bundle_id = hashlib.sha256(f"caseload {seed} {submissions}".encode()).hexdigest()
    with Vault(load.root) as vault:
        vault.unlock(team_key, "caseload")
        with vault.transaction() as conn:
            replies.remember_team_key(conn, team_public, "team.key")
            new = _fill(conn, vault, load, rng, bundle_id)
            custody.append(conn, "import bundle", f"bundle:{bundle_id}", {
                "file": "caseload.tar", "day": first_day.isoformat(), "new": new,
                "duplicates": 0, "damaged": []}, "caseload")
        threads = [w for w, sids in load.threads.items() if len(sids) >= 3][:5]
        for witness_id in threads:
            message = f"Дякуємо, ми отримали ваші свідчення ({witness_id[:6]})."
            replies.write_reply(vault, load.threads[witness_id][0], message, "caseload")
            load.replied[witness_id] = message
        cases.add(vault, load.case, load.threads[threads[0]], "caseload")
    load.seconds = time.monotonic() - started
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--submissions", type=int, default=10_000)
    args = parser.parse_args()
    load = generate(args.folder, args.submissions)
    print(f"{load.submissions} submissions in {load.seconds:.1f} s into {load.root}",
          file=sys.stderr)


if __name__ == "__main__":
    main()

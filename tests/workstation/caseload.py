"""A vault with a real caseload, made fast: thousands of submissions in four
languages, witness threads with follow-ups and replies, files with sanitizer
flags, a case.

Going through the witness form and `intake vault import` for 10,000
submissions would take many minutes (a codename's Argon2id, an fsync per
item), so the rows are written directly, in one transaction, the way the
importer writes them, with the vault's own code for everything that decides
what the desk shows: language.detect (lingua) for each testimony,
search.index (the lemmas and stems) for each text, custody.append for each
import, and replies.write_reply for the replies (sealed to the witness and to
the team for real). Testimonies are made of sentences written in each
language, a few with forms of "child" (дитина, дитини, дітей...), and the
result says which submissions have them, so that tests can count exactly.

    python tests/workstation/caseload.py VAULT [--submissions 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nacl import pwhash
from nacl.public import PrivateKey

from intake.format import teamkeys
from intake.format.teamkeys import b64
from intake.workstation import cases, custody, language, replies, search, triage
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


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _item(conn, vault: Vault, sid: str, kind: str, data: bytes, detected: str, name: str,
          flags: list[str]) -> str:
    item_id = secrets.token_hex(16)
    _write(vault.item_path(item_id), data)
    sha = hashlib.sha256(data).hexdigest()
    meta = {"kind": kind, "item_id": item_id, "submission_id": sid, "original_name": name,
            "detected_type": detected, "sha256_received": sha, "sha256_kept": sha,
            "sanitized": not flags, "flags": flags}
    conn.execute(
        "INSERT INTO items (item_id, submission_id, kind, original_name, detected_type, size,"
        " sha256_received, sha256_kept, sanitized, flags, envelope_sha256, phash, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        (item_id, sid, kind, name, detected, len(data), sha, sha, 0 if flags else 1,
         json.dumps(flags), hashlib.sha256(b"envelope" + data).hexdigest(),
         json.dumps(meta, ensure_ascii=False, sort_keys=True)))
    custody.append(conn, "import", f"item:{item_id}", {
        "submission_id": sid, "bundle_sha256": "0" * 64, "sha256_kept": sha, "kind": kind},
        "caseload")
    return item_id


def generate(root: Path, submissions: int = 10_000, seed: int = 18) -> Caseload:
    started = time.monotonic()
    rng = random.Random(seed)
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, key_file = teamkeys.generate("team", root / "team", PASSPHRASE.encode(), cheap)
    passfile = root / "team" / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    team_public = teamkeys.load_public_key(pub).public_key
    load = Caseload(root / "vault", key_file, passfile, submissions, {}, {})
    first_day = dt.date(2026, 1, 1)
    with Vault(load.root) as vault, vault.transaction() as conn:
        replies.remember_team_key(conn, team_public, "team.key")
        witnesses: list[str] = []
        for n in range(submissions):
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
            detected = language.detect(text)
            day = first_day + dt.timedelta(days=n * 90 // submissions)
            conn.execute(
                "INSERT INTO submissions (submission_id, witness_id, received_day, status,"
                " priority, language, choices) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sid, witness_id, day.isoformat(), rng.choice(triage.STATUSES[:4]),
                 rng.choice((0, 1, 1, 1, 2, 3)), detected, json.dumps({})))
            item_id = _item(conn, vault, sid, "testimony", text.encode(), "text/plain", "", [])
            search.index(conn, item_id, sid, text, detected)
            for _ in range(rng.choice((0, 0, 1, 2))):
                detected_type, name = rng.choice(FILE_TYPES)
                flags = [FLAG] if rng.random() < 0.05 else []
                load.flagged += bool(flags)
                _item(conn, vault, sid, "file", secrets.token_bytes(64), detected_type, name,
                      flags)
            load.by_language[lang] = load.by_language.get(lang, 0) + 1
            load.detected[detected] = load.detected.get(detected, 0) + 1
            load.threads.setdefault(witness_id, []).append(sid)
            if child:
                load.child_uk.add(sid)
    with Vault(load.root) as vault:
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

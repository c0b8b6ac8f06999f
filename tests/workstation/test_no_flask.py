"""The air-gapped side imports Flask only to serve the triage pages (desk.py, the
desk_*.py modules it registers, and desk_access.py, which decides whom they
answer)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import intake.workstation


def test_only_the_desk_imports_flask():
    modules = [f"intake.workstation.{m.name}"
               for m in pkgutil.iter_modules(intake.workstation.__path__)
               if not m.name.startswith("desk")]
    assert "intake.workstation.importer" in modules and "intake.workstation.cli" in modules
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('flask', 'flask_babel', 'flask_wtf', 'werkzeug')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_process_that_holds_a_key_loads_a_decoder():
    """Pillow and the XML readers are loaded by the parsing sandbox's child only;
    what imports, decrypts or serves never does."""
    modules = ["intake.workstation.cli", "intake.workstation.importer",
               "intake.workstation.decrypt", "intake.workstation.desk",
               "intake.workstation.desk_exports", "intake.workstation.cases",
               "intake.workstation.sandbox"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('PIL', 'defusedxml', 'xml')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""``cprofile_requests`` with the Authorize.Net adapter of another commit, for a paired A/B in one setup.

    python -m bench.cprofile_ab REV --api-key KEY --ids-file FILE --count 150 --out-dir DIR --stamp S

``REV`` is a git revision (``HEAD`` for the tree as it is); its ``payments/gateways/authorize_net.py``
(``git show REV:...``) is loaded as the adapter before Django starts, everything else is this tree.
Alternate two revisions several times against the same database, Redis and emulator (the
environment ``cprofile_requests`` needs is the one ``bench/run.py`` gives it) and compare the CPU
milliseconds per request.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    revision = sys.argv.pop(1)
    source = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "show", f"{revision}:payments/gateways/authorize_net.py"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    import payments.gateways  # the package, so the module's relative imports resolve

    with tempfile.NamedTemporaryFile(suffix="_authorize_net.py", delete=False) as handle:
        handle.write(source)
    try:
        spec = importlib.util.spec_from_file_location("payments.gateways.authorize_net", handle.name)
        module = importlib.util.module_from_spec(spec)
        sys.modules["payments.gateways.authorize_net"] = module
        spec.loader.exec_module(module)
        assert payments.gateways is not None
        from bench import cprofile_requests

        cprofile_requests.main()
    finally:
        Path(handle.name).unlink()


if __name__ == "__main__":
    main()

"""``cprofile_requests`` with the Authorize.Net adapter of another commit, for a paired A/B in one setup.

    python -m bench.cprofile_ab REV --api-key KEY --ids-file FILE --count 150 --out-dir DIR --stamp S

``REV`` is a git revision (``HEAD`` for the tree as it is); its adapter (the package
``payments/gateways/authorize_net/``, or the single ``authorize_net.py`` of older revisions, taken with
``git archive``) is loaded before Django starts, everything else is this tree.
Alternate two revisions several times against the same database, Redis and emulator (the
environment ``cprofile_requests`` needs is the one ``bench/run.py`` gives it) and compare the CPU
milliseconds per request.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    revision = sys.argv.pop(1)
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "archive", revision, "payments/gateways/"],  # noqa: S607
        check=True,
        capture_output=True,
    ).stdout
    import payments.gateways  # the package, so the adapter's relative imports resolve

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        package = Path(tmp) / "payments" / "gateways" / "authorize_net"
        if package.is_dir():
            spec = importlib.util.spec_from_file_location(
                "payments.gateways.authorize_net", package / "__init__.py", submodule_search_locations=[str(package)]
            )
        else:
            spec = importlib.util.spec_from_file_location("payments.gateways.authorize_net", f"{package}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["payments.gateways.authorize_net"] = module
        spec.loader.exec_module(module)
        assert payments.gateways is not None
        from bench import cprofile_requests

        cprofile_requests.main()


if __name__ == "__main__":
    main()

"""Generate the gRPC/protobuf Python code from ``protos/`` into ``server/gen/``.

Run ``python -m server.protogen`` (or ``make protos``). Output is deterministic; a test
regenerates into a temporary directory and fails when the committed code is stale.

grpc_tools emits absolute imports (``from siogw.v1 import common_pb2``) which would
collide with our own ``siogw`` package, so they are rewritten to
``server.gen.siogw.v1``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
OUT_DIR = ROOT / "server" / "gen"
_IMPORT_RE = re.compile(r"^from siogw\.v1 import ", re.MULTILINE)


def proto_files(proto_dir: Path = PROTO_DIR) -> list[Path]:
    return sorted(proto_dir.rglob("*.proto"))


def generate(out_dir: Path = OUT_DIR, proto_dir: Path = PROTO_DIR) -> list[Path]:
    """Regenerate all code into ``out_dir`` (replaced wholesale). Returns the files written."""
    from grpc_tools import protoc  # heavy import: only when generating

    include = str(resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_out = Path(tmp)
        args = [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{include}",
            f"--python_out={tmp_out}",
            f"--pyi_out={tmp_out}",
            f"--grpc_python_out={tmp_out}",
            *[str(p.relative_to(proto_dir)) for p in proto_files(proto_dir)],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        written: list[Path] = []
        for src in sorted(tmp_out.rglob("*.py*")):
            rel = src.relative_to(tmp_out)
            dst = out_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT_RE.sub("from server.gen.siogw.v1 import ", src.read_text())
            dst.write_text(text)
            written.append(dst)
    for pkg in {out_dir, *(p.parent for p in written)}:
        while True:
            init = pkg / "__init__.py"
            if not init.exists():
                init.write_text("")
            if pkg == out_dir or out_dir not in pkg.parents:
                break
            pkg = pkg.parent
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"generated {len(files)} files into {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Compile every .proto under protos/ with grpcio-tools.

Generated modules are committed (so the gateway and tests import them with no
build step) and `--check` fails when they differ from what the .proto files
produce, so the two can never drift unnoticed. Each proto directory also gets a
descriptor set (`descriptors.binpb`, with imports) for backends that hand the
gateway a file instead of serving reflection.
"""
from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def output_base(rel: Path, protos_out: Path, root_out: Path) -> Path:
    """protos/edge/*.proto belong to the gateway package itself (edge/*_pb2.py);
    every other directory is a package of its own under protos/ (demo, tests)."""
    return root_out if rel.parts[:1] == ("edge",) else protos_out


def _googleapis_include() -> str:
    from google.api import annotations_pb2  # googleapis-common-protos ships the .proto sources too

    return str(Path(annotations_pb2.__file__).resolve().parent.parent.parent)


def _protoc_include() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).resolve().parent / "_proto")


def proto_dirs() -> list[Path]:
    return sorted({p.parent for p in PROTOS.rglob("*.proto")})


def generate(protos_out: Path, root_out: Path) -> None:
    from grpc_tools import protoc

    includes = [f"-I{PROTOS}", f"-I{_googleapis_include()}", f"-I{_protoc_include()}"]
    for directory in proto_dirs():
        files = sorted(str(p.relative_to(PROTOS)) for p in directory.glob("*.proto"))
        rel = directory.relative_to(PROTOS)
        out = output_base(rel, protos_out, root_out)
        (out / rel).mkdir(parents=True, exist_ok=True)
        args = [
            "protoc",
            *includes,
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out / rel / 'descriptors.binpb'}",
            *files,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed for {rel}")
        init = out / rel / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from the .proto files beside this module by scripts/gen_protos.py."""\n')


def generated_files(protos_out: Path, root_out: Path) -> dict[str, Path]:
    """Map of relative name -> file for every generated file."""
    found: dict[str, Path] = {}
    for directory in proto_dirs():
        rel = directory.relative_to(PROTOS)
        base = output_base(rel, protos_out, root_out) / rel
        if not base.is_dir():
            continue
        for p in base.iterdir():
            if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "descriptors.binpb")):
                found[str(rel / p.name)] = p
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed output is stale")
    args = parser.parse_args()
    if not args.check:
        generate(PROTOS, ROOT)
        print(f"generated {len(generated_files(PROTOS, ROOT))} files")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "protos", Path(tmp) / "root")
        fresh = generated_files(Path(tmp) / "protos", Path(tmp) / "root")
        committed = generated_files(PROTOS, ROOT)
        stale = sorted(
            n for n in fresh.keys() | committed.keys()
            if n not in fresh or n not in committed or not filecmp.cmp(fresh[n], committed[n], shallow=False)
        )
    if stale:
        print("generated proto code is stale; run scripts/gen_protos.py:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print("generated proto code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

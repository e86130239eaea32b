"""Command line: ``python -m graphs convert|info``.

Exit codes: 0 all files converted, 1 some failed (the report is still complete
and every good file still converted), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graphs.errors import ConversionError, GraphFileError, MissingFile, SchemaMismatch
from graphs.policy import PARENT_LEVELS
from graphs.schema import EDGE_GROUPS, GRANULARITIES, NODE_GROUPS, EdgeKind, NodeKind

DEFAULTS = {"granularity": "section", "synapses": "connection", "out": "cg_out"}
PATTERNS = ("*.nml", "*.nml.h5")  # what a directory argument is searched for


def process_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m graphs",
        description="Convert NeuroML2 models to computational graphs (CGs).")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="NeuroML2 files/directories -> .npz graphs")
    conv.add_argument("paths", nargs="*",
                      help=".nml / .nml.h5 files or directories (recursive *.nml and "
                      "*.nml.h5); default: the "
                      "NeuroML2 examples bundled in pyNeuroML's jNeuroML jar")
    conv.add_argument("--out", default=DEFAULTS["out"],
                      help=f"output directory (default: {DEFAULTS['out']})")
    conv.add_argument("--granularity", choices=GRANULARITIES,
                      default=DEFAULTS["granularity"],
                      help="one node per segment, per unbranched section, or soma only")
    conv.add_argument("--synapses", choices=("connection", "type"),
                      default=DEFAULTS["synapses"],
                      help="one synapse node per connection, or one per (pre population, "
                      "post population, synapse) carrying the count and weight/delay "
                      "statistics of its connections, so the graph grows with neurons and "
                      "connection endpoints, not with synapses (large networks)")
    add_allow_path(conv)
    info = sub.add_parser("info", help="summarize converted .npz graphs (each one; a damaged "
                          "file is reported and the rest still summarised)")
    info.add_argument("files", nargs="+", metavar="FILE")
    return parser.parse_args(argv)


def add_allow_path(parser: argparse.ArgumentParser) -> None:
    """The ``--allow-path DIR`` option of every command that reads NeuroML files."""
    parser.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="a folder outside a model's own tree that its includes and "
                        "HDF5 links may read (repeatable). By default a model reads only "
                        f"inside its file's folder and up to {PARENT_LEVELS} folders above "
                        "it, never your home folder or /")


def find_inputs(paths: Sequence[str]) -> List[Tuple[Path, Path]]:
    """(input file, output path relative to --out) for every file to convert."""
    found: List[Tuple[Path, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted({f for pattern in PATTERNS for f in p.rglob(pattern)}):
                found.append((f, f.relative_to(p).with_suffix(".npz")))
        else:  # missing files are reported per file, not as a usage error
            found.append((p, Path(p.name).with_suffix(".npz")))
    seen: Dict[Path, int] = {}
    unique = []
    for f, rel in found:
        n = seen.get(rel, 0)
        seen[rel] = n + 1
        unique.append((f, rel if n == 0 else rel.with_name(f"{rel.stem}_{n}.npz")))
    return unique


def convert_one(path: Path, out: Path, granularity: str, synapses: str = "connection",
                allow: Sequence = ()) -> Dict:
    """Convert one file; never raises for bad input. Returns its report entry."""
    from graphs.convert import convert_file
    from graphs.storage import save_cg

    entry = {"file": str(path), "status": "ok", "error": None, "n_nodes": None,
             "n_edges": None, "nodes_by_kind": None, "edges_by_kind": None}
    try:
        if not path.is_file():
            raise MissingFile(path, "file not found" if not path.exists() else
                              "not a regular file")
        cg = convert_file(path, granularity, synapses, allow)
        save_cg(cg, out)
        entry.update(n_nodes=cg.n_nodes, n_edges=cg.n_edges, nodes_by_kind=cg.nodes_by_kind(),
                     edges_by_kind=cg.edges_by_kind(), sha256=cg.meta["sha256"],
                     npz=str(out))
    except (ConversionError, SchemaMismatch) as e:
        entry.update(status="error", error={"type": type(e).__name__, "message": str(e)})
    except (Exception, SystemExit) as e:  # a library bug must not end the batch
        entry.update(status="error", error={"type": type(e).__name__,
                                            "message": f"{path}: internal error: {e!r}"})
    return entry


def convert_command(args) -> int:
    from tqdm import tqdm

    from graphs.storage import write_manifest

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.paths:
        from graphs.examples import bundled_examples_dir

        args.paths = [str(bundled_examples_dir())]
        print(f"no paths given: converting the jNeuroML examples in {args.paths[0]}")
    inputs = find_inputs(args.paths)
    report = []
    for path, rel in tqdm(inputs, desc="convert", unit="file", file=sys.stderr,
                          disable=None):
        report.append(convert_one(path, out_dir / rel, args.granularity, args.synapses,
                                  args.allow_path))
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    write_manifest(out_dir, report)
    failed = [r for r in report if r["status"] != "ok"]
    for r in failed:
        print(f"error: {r['error']['type']}: {r['error']['message']}", file=sys.stderr)
    print(f"converted {len(report) - len(failed)}/{len(report)} files -> {out_dir}"
          f" (report: {out_dir / 'report.json'})")
    return 1 if failed or not report else 0


def info_command(args) -> int:
    """Summarise every file; exit 1 if any could not be read (each one named)."""
    from graphs.storage import load_cg

    bad = 0
    for i, file in enumerate(args.files):
        try:
            cg = load_cg(file)
        except GraphFileError as e:
            print(f"error: {e}", file=sys.stderr)
            bad += 1
            continue
        if i:
            print()
        print_info(file, cg)
    if len(args.files) > 1:
        print(f"{len(args.files) - bad}/{len(args.files)} graphs read", file=sys.stderr)
    return 1 if bad else 0


def print_info(file, cg) -> None:
    print(f"{file}: schema {cg.meta['schema_version']}, source {cg.meta.get('source')}")
    print(f"granularity {cg.meta.get('granularity')}, synapses "
          f"{cg.meta.get('synapses', 'connection')}, {cg.n_nodes} nodes, {cg.n_edges} edges")
    print("nodes by kind: " + ", ".join(f"{k}={v}" for k, v in cg.nodes_by_kind().items()))
    print("edges by kind: " + ", ".join(f"{k}={v}" for k, v in cg.edges_by_kind().items()))
    print("feature-group presence (fraction of nodes with any value, per node kind):")
    header = "  group     " + " ".join(f"{k.name.lower():>9}" for k in NodeKind)
    print(header)
    for group, sl in NODE_GROUPS.items():
        cells = []
        for k in NodeKind:
            sel = cg.node_kind == k
            frac = (np.any(cg.node_feature_mask[sel, sl] > 0, axis=1).mean()
                    if sel.any() else float("nan"))
            cells.append(f"{frac:9.2f}" if sel.any() else f"{'-':>9}")
        print(f"  {group:9} " + " ".join(cells))
    print("edge-feature presence (fraction of edges, per edge kind):")
    print("  group     " + " ".join(f"{k.name.lower():>10}" for k in EdgeKind))
    for group, sl in EDGE_GROUPS.items():
        cells = []
        for k in EdgeKind:
            sel = cg.edge_kind == k
            cells.append(f"{np.any(cg.edge_feature_mask[sel, sl] > 0, axis=1).mean():10.2f}"
                         if sel.any() else f"{'-':>10}")
        print(f"  {group:9} " + " ".join(cells))




def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["synth"]:  # generation is not the front end's; it lives in bnnsim
        print("python -m graphs synth moved: run python -m bnnsim synth " + " ".join(argv[1:]),
              file=sys.stderr)
        return 2
    args = process_args(argv)
    if args.command == "convert":
        return convert_command(args)
    return info_command(args)

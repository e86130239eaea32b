"""The package layout keeps its promises: data flows one way, no import cycles."""

import ast

import pytest

from tests.conftest import REPO

PACKAGES = ("graphs", "bnnsim", "bgan_jax", "experiments")
NEVER = {"graphs": {"bnnsim", "bgan_jax", "experiments"}, "bnnsim": {"bgan_jax", "experiments"},
         "bgan_jax": {"experiments"}}


def module_imports():
    """{module: set of project modules it imports (anywhere in the file)}."""
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            name = name.removesuffix(".__init__")
            found = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                    found.update(f"{node.module}.{a.name}" for a in node.names)
                elif isinstance(node, ast.Import):
                    found.update(a.name for a in node.names)
            out[name] = found
    return {m: {i for i in deps if i in out} for m, deps in out.items()}


def test_no_upward_imports():
    bad = [(m, i) for m, deps in module_imports().items() for i in deps
           if i.split(".")[0] in NEVER.get(m.split(".")[0], ())]
    assert not bad, bad


def test_the_library_never_imports_the_process_tuning():
    """``bgan_jax.runtime`` is for entry points (train.py, analyze.py, drivers, benches)."""
    bad = [(m, i) for m, deps in module_imports().items() for i in deps
           if i.startswith("bgan_jax.runtime") and not m.startswith(("bgan_jax.runtime",
                                                                     "experiments"))]
    assert not bad, bad


def test_no_import_cycles_between_modules():
    graph = module_imports()
    # a package's __init__ re-exporting its own modules is not a cycle of logic
    graph = {m: {d for d in deps if not m.startswith(d + ".") and not d.startswith(m + ".")}
             for m, deps in graph.items()}
    state, cycle = {}, []

    def visit(m, stack):
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                cycle.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycle, cycle


def test_model_import_needs_no_simulator_libraries():
    """A model run (train.py on a built dataset, the GPU benchmarks) imports neither the
    simulators nor the feature library that only dataset builds use."""
    import subprocess
    import sys

    code = ("import sys, bgan_jax, bgan_jax.bgan.train, bgan_jax.bgan.data; "
            "print(sorted(m for m in ('efel', 'neo', 'neuron', 'pyneuroml', 'tables') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_public_names_load_on_first_use():
    """``import bgan_jax`` loads no jax (an entry point can set up malloc first); every
    name of ``__all__`` resolves to the object of the module that defines it."""
    import importlib
    import subprocess
    import sys

    import bgan_jax

    code = "import sys, bgan_jax; print('jax' in sys.modules, 'flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]
    for name, module in bgan_jax._EXPORTS.items():
        assert getattr(bgan_jax, name) is getattr(importlib.import_module(module), name)
    assert set(dir(bgan_jax)) >= set(bgan_jax.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bgan_jax.nope


def test_the_public_api_is_one_list_that_type_checkers_see():
    """``__all__``, the lazy ``_EXPORTS`` and the ``TYPE_CHECKING`` imports name the same
    objects from the same modules, and no internal helper is public."""
    import ast

    import bgan_jax

    assert bgan_jax.__all__ == list(bgan_jax._EXPORTS)
    tree = ast.parse((REPO / "bgan_jax" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and getattr(n.test, "id", None) == "TYPE_CHECKING")
    seen = {a.name: node.module for node in block.body for a in node.names}
    assert seen == bgan_jax._EXPORTS
    for internal in ("compact_pairs", "ganlow_pairs", "touched", "NSA", "train_loop"):
        assert internal not in bgan_jax.__all__

"""The code's structure where it matters for adding to it: no import cycle among the package's
modules, a config that loads without MXNet, and every per-stage file name built in one module
(cores/stages.py)."""
import ast
import glob
import os
import re
import subprocess
import sys

from tests.conftest import REPO


def _module_imports(lazy=True):
    """{module: set of cores modules it imports}: at module level, and with ``lazy`` inside
    functions too (a lazy import still ties the two modules together)."""
    graph = {}
    for path in glob.glob(os.path.join(REPO, "cores", "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
        name = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
        deps = set()
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in (ast.walk(tree) if lazy else tree.body):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("cores"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cores"):
                deps.add(node.module)
                deps.update("%s.%s" % (node.module, a.name) for a in node.names)
        graph[name] = deps
    return {k: {d for d in v if d in graph and d != k} for k, v in graph.items()}


def cycles(graph):
    """Every import cycle of ``graph`` (as a list of modules), depth first."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_in_the_package():
    graph = _module_imports()
    assert len(graph) > 30
    assert cycles(graph) == []


def floors(graph):
    """(depth, chain) of the longest import chain of ``graph`` (an acyclic one): how many
    layers of modules a reader passes through from the top to the bottom."""
    import functools

    @functools.lru_cache(None)
    def depth(node):
        return 1 + max((depth(d) for d in graph[node]), default=0)
    top = max(graph, key=depth)
    chain = [top]
    while graph[chain[-1]]:
        chain.append(max(graph[chain[-1]], key=depth))
    return depth(top), chain


def test_the_package_is_at_most_nine_modules_deep():
    """Counting lazy imports: 12 floors before the methods and the backbone registry (the
    config imported the stage table, which built a network to learn the score size; metrics
    read snapshots through checkpoint), 9 now."""
    depth, chain = floors(_module_imports())
    assert depth <= 9, " > ".join(chain)
    assert floors({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"c"}}) == (3, ["a", "b", "c"])


def test_the_library_holds_no_lab():
    """The generator, the benchmark variants, provenance and the launcher live with their
    users (datagen/, bench/, tools/); nothing in cores/ imports them."""
    graph = _module_imports()
    for module in graph:
        assert not module.startswith(("cores.data.toy", "cores.data.photo", "cores.provenance",
                                      "cores.launcher")), module
    for path in glob.glob(os.path.join(REPO, "cores", "**", "*.py"), recursive=True):
        with open(path) as f:
            text = f.read()
        assert not re.search(r"^\s*(from|import) (datagen|bench|tools)\b", text, re.M), path


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


def test_loading_a_config_imports_no_mxnet():
    """create_dataset.py and every load_config used to import MXNet and register the CRF
    operator (config -> networks -> crf_op -> config)."""
    code = ("import sys; from cores.config import load_config; "
            "load_config('demo/toy.yaml', ['BASE_NET=resnet50']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mxnet'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


SUFFIXES = ["-history.json", "-losses.png", ".optimizer.params", "-config.json", "metrics.json",
            "_cues_config.json", "-classification.json", "-int8", "%04d"]


def test_every_per_stage_file_name_is_built_in_the_stage_table():
    """The names a stage's files carry appear in code only in cores/stages.py (docstrings,
    comments, messages and help texts may name them)."""
    offenders = []
    paths = glob.glob(os.path.join(REPO, "cores", "**", "*.py"), recursive=True)
    paths += glob.glob(os.path.join(REPO, "tools", "*.py"))
    paths += glob.glob(os.path.join(REPO, "bench", "*.py"))
    paths += glob.glob(os.path.join(REPO, "demo", "*.py")) + glob.glob(os.path.join(REPO,
                                                                                    "*.py"))
    for path in paths:
        if path.endswith(os.path.join("cores", "stages.py")):
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        helps = {id(k.value) for n in ast.walk(tree) if isinstance(n, ast.Call)
                 for k in n.keywords if k.arg == "help"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    id(node) not in docs and id(node) not in helps:
                for suffix in SUFFIXES:
                    text = node.value        # a name or a format, not a message or a flag
                    if suffix in text and not re.search(r"\s", text) and \
                            not text.startswith("--"):
                        offenders.append("%s:%d %r" % (os.path.relpath(path, REPO),
                                                       node.lineno, node.value[:60]))
    assert offenders == []


def test_the_pipeline_driver_runs_steps_in_order_and_skips_finished_ones(tmp_path):
    from cores import pipeline
    from cores.config import load_config
    cfg = load_config(None, ["MODEL_PATH=%s" % tmp_path])
    steps = pipeline.training_steps(cfg, vis=3) + pipeline.eval_steps(
        ([], ["--crf", "--flip"]), savemask=[["--crf", "--flip"]])
    assert [s.key for s in steps] == ["create_dataset", "pretrain", "bg_cues", "fg_cues", "sec",
                                      "supervised", "eval ", "eval supervised ",
                                      "eval --crf --flip", "eval supervised --crf --flip"]
    assert steps[2].args == ["train_bg_cues.py", "--resume", "--vis", "3"]
    assert steps[8].args == ["eval.py", "--crf", "--flip", "--savemask"]
    calls = []

    def run_one(step, args):
        calls.append(args)
        if step.key == "sec":
            raise KeyboardInterrupt
    import pytest
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_steps(steps, ["--cfg", "x.yaml"], run_one, markers=str(tmp_path),
                           later=["A=1"])
    assert calls[0] == ["create_dataset.py", "--cfg", "x.yaml", "A=1"] and len(calls) == 5
    calls.clear()
    times, ran = pipeline.run_steps(steps, [], run_one=lambda s, a: calls.append(a),
                                    markers=str(tmp_path))
    assert ran == [s.key for s in steps[4:]] and set(times) == {s.key for s in steps}
    (tmp_path / "vgg16.params").write_text("x")                  # weights there: no pretraining
    assert "pretrain" not in [s.key for s in pipeline.training_steps(cfg)]

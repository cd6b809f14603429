#!/usr/bin/python3
"""Tests of bench_peer.py: its BLAS checks, the cases' commands and summary rows, and the one
configuration table (bench_configs.py) it shares with profile_steps.py; need neither torch nor
clipgo (the reference's own parsing of the flags is checked where torch is installed).
`go test ./stages/bench/` runs them (TestBenchPeerHarness).

Run: /usr/bin/python3 scripts/test_bench_peer.py
"""
import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_peer", os.path.join(HERE, "bench_peer.py"))
bp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bp)
sys.path.insert(0, HERE)
import bench_configs  # noqa: E402
import profile_steps  # noqa: E402

ROOT = os.path.dirname(HERE)
PEERS = os.path.join(os.environ.get("CLIPGO_SHARED") or os.path.join(os.path.dirname(ROOT), "shared"), "peers")

OMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
PTH = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


class ReferenceBLAS(unittest.TestCase):
    def test_openmp_accepted(self):
        for blas in (OMP + "/libopenblasp-r0.3.21.so", OMP + "/liblapack.so.3"):
            self.assertEqual(bp.check_reference_blas("ref", {"blas": blas},
                                                     [OMP + "/libblas.so.3", "/usr/lib/libgomp.so.1"], OMP), blas)

    def test_refused(self):
        cases = {
            "pthread": ({"blas": PTH + "/libopenblasp-r0.3.21.so"}, []),
            "unknown": ({"blas": "?"}, []),
            "no field": ({}, []),
            "a pthread library mapped too": ({"blas": OMP + "/libblas.so.3"}, [PTH + "/libopenblasp-r0.3.21.so"]),
        }
        for name, (out, mapped) in cases.items():
            with self.subTest(name), self.assertRaises(SystemExit) as e:
                bp.check_reference_blas("ref", out, mapped, OMP)
            self.assertIn("refusing to report", str(e.exception.code))

    def test_clipgo_not_on_openmp(self):
        bp.check_clipgo_blas([PTH + "/libopenblasp-r0.3.21.so"], OMP)
        bp.check_clipgo_blas([], OMP)  # a pure-Go build maps none
        with self.assertRaises(SystemExit):
            bp.check_clipgo_blas([OMP + "/libopenblasp-r0.3.21.so"], OMP)


class Environments(unittest.TestCase):
    def test_only_the_reference_gets_the_openmp_dir(self):
        old = os.environ.get("LD_LIBRARY_PATH")
        try:
            os.environ["LD_LIBRARY_PATH"] = OMP + ":/opt/x"
            self.assertEqual(bp.reference_env(OMP)["LD_LIBRARY_PATH"], OMP + ":/opt/x")
            self.assertEqual(bp.clipgo_env(OMP)["LD_LIBRARY_PATH"], "/opt/x")
            os.environ["LD_LIBRARY_PATH"] = OMP
            self.assertNotIn("LD_LIBRARY_PATH", bp.clipgo_env(OMP))
            del os.environ["LD_LIBRARY_PATH"]
            self.assertEqual(bp.reference_env(OMP)["LD_LIBRARY_PATH"], OMP)
        finally:
            if old is None:
                os.environ.pop("LD_LIBRARY_PATH", None)
            else:
                os.environ["LD_LIBRARY_PATH"] = old


class Refusal(unittest.TestCase):
    def test_missing_openmp_dir(self):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([sys.executable, os.path.join(HERE, "bench_peer.py"), "--clipgo", "/bin/false",
                                "--peers", d, "--openmp-dir", os.path.join(d, "openblas-openmp")],
                               capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("libopenblas0-openmp", p.stderr)
        self.assertEqual(p.stdout, "")


def read(path):
    with open(path) as f:
        return f.read()


def model_yaml(path):
    """A configs/models file (flow-style mappings) in clip_step.py's size names."""
    text = read(path)
    out = {"embed_dim": int(re.search(r"^embed_dim:\s*(\d+)", text, re.M).group(1))}
    for tower, names in (("vision", {"image_size": "image_size", "patch_size": "patch_size", "width": "vision_width",
                                     "layers": "vision_layers", "heads": "vision_heads"}),
                         ("text", {"context_length": "context_length", "vocab_size": "vocab_size",
                                   "width": "text_width", "layers": "text_layers", "heads": "text_heads"})):
        body = re.search(r"^%s:\s*\{(.*)\}" % tower, text, re.M).group(1)
        kv = dict(re.findall(r"(\w+):\s*([\d.]+)", body))
        out.update({names[k]: int(v) for k, v in kv.items() if k in names})
    return out


def flag_values(cmd, prefix):
    """{flag: value} of every `--flag value` pair in cmd (values of --set split at "=")."""
    out, i = {}, 0
    while i < len(cmd):
        if cmd[i] == "--set":
            k, _, v = cmd[i + 1].partition("=")
            out[prefix + k] = v
            i += 2
        elif cmd[i].startswith("--") and i + 1 < len(cmd) and not cmd[i + 1].startswith("--"):
            out[cmd[i]] = cmd[i + 1]
            i += 2
        else:
            out[cmd[i]] = True
            i += 1
    return out


def args(**over):
    a = argparse.Namespace(clipgo="bin/clipgo", peers="/peers", python="/usr/bin/python3", threads=2, steps=0,
                           warmup=None)
    vars(a).update(over)
    return a


class Cases(unittest.TestCase):
    def test_both_sides_get_the_same_model_and_settings(self):
        renamed = {"--batch": "--batch-size", "--preset": "--preset", "--steps": "--steps", "--warmup": "--warmup",
                   "--threads": "--threads"}
        renamed.update({"set:" + v: "--" + k.replace("_", "-") for k, v in bench_configs.GO_KEY.items()})
        for case, (mode, model, batch, steps, warmup) in bp.CASES.items():
            with self.subTest(case):
                ref, go = bp.commands(case, args(), "/repo/scripts/peers/infer_peer.py")
                r, g = flag_values(ref[2:], ""), flag_values(go[2:], "set:")
                g.pop("--mode", None)
                r.pop("--peers", None)
                self.assertEqual({renamed[k]: v for k, v in g.items()}, r)
                self.assertEqual(r["--threads"], "2")
                self.assertEqual(r.get("--steps"), str(steps) if steps else None)
                self.assertEqual(r.get("--warmup"), None if warmup is None else str(warmup))

    def test_modes(self):
        for case, (mode, *_) in bp.CASES.items():
            with self.subTest(case):
                ref, go = bp.commands(case, args(), "/repo/scripts/peers/infer_peer.py")
                self.assertEqual(go[:2], ["bin/clipgo", "bench"])
                if mode == "inference":
                    self.assertEqual(ref[1], "/repo/scripts/peers/infer_peer.py")
                    self.assertEqual(ref[2:4], ["--peers", "/peers"])
                    self.assertEqual(go[2:4], ["--mode", "inference"])
                else:
                    self.assertEqual(mode, "training")
                    self.assertEqual(ref[1], "/peers/clip_step.py")
                    self.assertNotIn("--mode", go)

    def test_steps_and_warmup_override_every_case(self):
        for case in bp.CASES:
            ref, go = bp.commands(case, args(steps=1, warmup=0), "/x/infer_peer.py")
            for cmd in (ref, go):
                f = flag_values(cmd[2:], "set:")
                self.assertEqual((f["--steps"], f["--warmup"]), ("1", "0"), case)

    def test_models_are_the_repository_configs(self):
        models = os.path.join(ROOT, "configs", "models")
        sizes = lambda name: dict(model_yaml(os.path.join(models, bench_configs.MODELS[name][0] + ".yaml")),
                                  **bench_configs.MODELS[name][1])
        self.assertEqual(sizes("tiny"), model_yaml(os.path.join(models, "tiny.yaml")))
        self.assertEqual(sizes("small"), model_yaml(os.path.join(models, "small.yaml")))
        self.assertEqual(sizes("vitb32"), model_yaml(os.path.join(models, "vit-b-32.yaml")))
        demo = read(os.path.join(ROOT, "configs", "train", "demo.yaml"))
        self.assertEqual(re.search(r"^model_preset:\s*(\w+)", demo, re.M).group(1), bench_configs.MODELS["recipe"][0])
        text = dict(re.findall(r"(\w+):\s*(\d+)", re.search(r"^  text:\s*\{(.*)\}", demo, re.M).group(1)))
        self.assertEqual({k: int(v) for k, v in text.items()}, bench_configs.MODELS["recipe"][1])
        self.assertEqual(int(re.search(r"^\s+batch_size:\s*(\d+)", demo, re.M).group(1)),
                         bench_configs.MODELS["recipe"][2])

    def test_profile_steps_uses_the_same_table(self):
        self.assertIs(profile_steps.bench_configs, bench_configs)
        for name in ("VITB32", "GO_KEY", "sizes"):
            self.assertFalse(hasattr(profile_steps, name), "profile_steps.py keeps its own %s" % name)
        for name, (go, ref, _, _) in profile_steps.CONFIGS.items():
            self.assertEqual((go, ref), bench_configs.flags(name, profile_steps.PROFILE[name][0]))
        self.assertEqual(set(profile_steps.CONFIGS), set(bench_configs.MODELS))

    def test_reference_parses_the_flags(self):
        """clip_step.py's own parser takes every reference command's flags and lands on the model."""
        if os.environ.get("BENCH_PEER_TEST_SHORT") == "1":
            self.skipTest("BENCH_PEER_TEST_SHORT=1 (go test -short): the torch import is left to the full run")
        try:
            sys.path.insert(0, PEERS)
            import clip_step
        except ImportError as e:
            if os.environ.get("CLIPGO_REQUIRE_ALL") == "1":
                self.fail("CLIPGO_REQUIRE_ALL=1 and clip_step.py cannot be imported from %s: %s" % (PEERS, e))
            self.skipTest("clip_step.py (../shared/peers) or torch missing: %s" % e)
        for case, (mode, model, batch, _, _) in bp.CASES.items():
            with self.subTest(case):
                ref, _ = bp.commands(case, args(), "/x/infer_peer.py")
                c = clip_step.parse(ref[4:] if mode == "inference" else ref[2:])
                want = dict(clip_step.PRESETS[bench_configs.MODELS[model][0]], **bench_configs.MODELS[model][1])
                for k in clip_step.MODEL_KEYS:
                    self.assertEqual(getattr(c, k), want[k], k)
                self.assertEqual(c.batch_size, batch or bench_configs.MODELS[model][2] or want["batch_size"])


class Summary(unittest.TestCase):
    def test_inference_row(self):
        r = {"go": [{"batch": 32, "images_per_s": x, "texts_per_s": 2 * x, "wait4_peak_rss_mib": 100}
                    for x in (10, 30, 20)],
             "ref": [{"batch": 32, "images_per_s": x, "texts_per_s": x, "wait4_peak_rss_mib": 400}
                     for x in (5, 10, 99)]}
        self.assertEqual(bp.inference_row("infer-vitb32", r),
                         "infer-vitb32 | 32 | 20.0 | 10.0 | 2.00x | 40.0 | 10.0 | 4.00x | 100 | 400 | 0.25x")

    def test_slow_rates_keep_three_digits(self):
        r = {"go": [{"samples_per_s": 2.346, "mfu": 0.5, "achieved_gflops": 50, "wait4_peak_rss_mib": 5000}],
             "ref": [{"samples_per_s": 1.5, "achieved_gflops": 40, "wait4_peak_rss_mib": 3000}]}
        self.assertTrue(bp.training_row("vitb32", r, 100.0).startswith("vitb32 | 2.35 | 1.50 | 1.56x |"))

    def test_training_row(self):
        r = {"go": [{"samples_per_s": 30, "mfu": 0.5, "achieved_gflops": 50, "wait4_peak_rss_mib": 200}] * 3,
             "ref": [{"samples_per_s": 20, "achieved_gflops": 40, "wait4_peak_rss_mib": 400}] * 3}
        self.assertEqual(bp.training_row("recipe", r, 100.0),
                         "recipe | 30.0 | 20.0 | 1.50x | 50.0% | 50.0% | 40.0% | 200 | 400 | 0.50x")


if __name__ == "__main__":
    unittest.main()

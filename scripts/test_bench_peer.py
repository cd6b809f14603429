#!/usr/bin/python3
"""Tests of bench_peer.py's BLAS checks; need neither torch nor clipgo.

Run: /usr/bin/python3 scripts/test_bench_peer.py
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_peer", os.path.join(HERE, "bench_peer.py"))
bp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bp)

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


if __name__ == "__main__":
    unittest.main()

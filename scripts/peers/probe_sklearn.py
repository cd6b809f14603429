#!/usr/bin/python3
"""scikit-learn's logistic regression, the reference for clipgo's linear probe (stages/eval).

Usage: probe_sklearn.py < request.json

Reads one JSON object from stdin:
  {"train_x": [[...]] (n rows of d features), "train_y": [...] (labels in [0, K)),
   "classes": K, "Cs": [C, ...], "max_iter": N, "tol": T,
   "eval": {"NAME": {"x": [[...]], "y": [...]}, ...}}
and for every C fits
  LogisticRegression(penalty="l2", C=C, solver="lbfgs", multi_class="multinomial",
                     fit_intercept=True, max_iter=N, tol=T)
which minimises C * sum_i -log softmax(W x_i + b)[y_i] + 0.5 * ||W||^2 (the intercept is not
penalised). It prints one JSON object, {"sklearn": version, "fits": [...]}, one fit per C:
{"C", "n_iter", "objective" (the objective above at the solution), "coef" [K][d],
"intercept" [K], "acc1": {NAME: accuracy of the eval set NAME}}.

Every class in [0, K) must occur in train_y (scikit-learn learns only the classes it sees).
Needs only numpy, scipy and scikit-learn (Debian: python3-sklearn).
"""
import json
import sys
import warnings

import numpy as np
import sklearn
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def objective(clf, x, y, C):
    z = x @ clf.coef_.T + clf.intercept_
    loss = np.sum(logsumexp(z, axis=1) - z[np.arange(len(y)), y])
    return float(C * loss + 0.5 * np.sum(clf.coef_ ** 2))


def main():
    req = json.load(sys.stdin)
    x = np.asarray(req["train_x"], dtype=np.float64)
    y = np.asarray(req["train_y"], dtype=np.int64)
    K = int(req["classes"])
    if sorted(set(y.tolist())) != list(range(K)):
        sys.exit(f"probe_sklearn.py: error: train_y must hold every class of [0, {K}), has {sorted(set(y.tolist()))}")
    sets = {name: (np.asarray(s["x"], dtype=np.float64), np.asarray(s["y"], dtype=np.int64))
            for name, s in req.get("eval", {}).items()}
    fits = []
    for C in req["Cs"]:
        clf = LogisticRegression(penalty="l2", C=C, solver="lbfgs", multi_class="multinomial",
                                 fit_intercept=True, max_iter=int(req["max_iter"]), tol=float(req["tol"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        fits.append({
            "C": C,
            "n_iter": int(clf.n_iter_[0]),
            "objective": objective(clf, x, y, C),
            "coef": clf.coef_.tolist(),
            "intercept": clf.intercept_.tolist(),
            "acc1": {name: float(np.mean(clf.predict(sx) == sy)) for name, (sx, sy) in sets.items()},
        })
    json.dump({"sklearn": sklearn.__version__, "fits": fits}, sys.stdout)


if __name__ == "__main__":
    main()

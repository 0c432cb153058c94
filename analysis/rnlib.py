"""Shared helpers of the analysis scripts: reading a run directory.

A run directory holds manifest.json, config.cfg and metrics CSV files with a
header line (see include/resnode/metrics.h). Everything here needs only numpy
and the standard library; plots use matplotlib's Agg backend (no display).
"""
import csv
import json
import math
import os
import re
import sys

import numpy as np

Z95 = 1.959963984540054  # the normal quantile of a 95% interval


def fail(message):
    """Exit with a message naming what is wrong (no traceback for bad input)."""
    sys.stderr.write("%s: error: %s\n" % (os.path.basename(sys.argv[0]), message))
    sys.exit(2)


def help_if_asked(doc):
    """-h or --help: the script's own description, exit 0 (not a run directory)."""
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        sys.stdout.write(doc.strip() + "\n")
        sys.exit(0)


def run_dir(path):
    if not os.path.isdir(path):
        fail("%s is not a directory (expected a run directory written by resnode-mpi)" % path)
    return path


def manifest(path):
    name = os.path.join(path, "manifest.json")
    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail("%s: cannot read the manifest: %s" % (name, e))


def read_csv(path, name, required=True):
    """A metrics CSV as a dict of column -> numpy array (strings stay strings)."""
    full = os.path.join(path, name)
    if not os.path.exists(full):
        if required:
            fail("%s: missing (did the run finish? see %s)" % (full, os.path.join(path, "log.txt")))
        return None
    with open(full, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        fail("%s: empty file (expected a header line)" % full)
    header, body = rows[0], [r for r in rows[1:] if r]
    columns = {}
    for j, key in enumerate(header):
        values = [r[j] if j < len(r) else "" for r in body]
        try:
            columns[key] = np.array([float(v) for v in values])
        except ValueError:
            columns[key] = np.array(values)
    return columns


class H5Arrays:
    """A run's HDF5 arrays (gram.h5, params.h5: include/resnode/core/arrays.h)
    through h5py. read() fails naming the file and the dataset when the
    dataset is missing or a chunk fails its Fletcher32 checksum."""

    def __init__(self, full, handle):
        self.path, self.handle = full, handle

    def read(self, dataset, index=()):
        if dataset not in self.handle:
            fail("%s: has no dataset %s (not a resnode-mpi file, or of another version)" % (self.path, dataset))
        try:
            return self.handle[dataset][index]
        except (OSError, ValueError) as e:
            fail("%s: dataset %s is damaged (%s)" % (self.path, dataset, e))

    def attr(self, name, default=None):
        return self.handle.attrs.get(name, default)


def read_h5(path, name):
    """RUN_DIR/NAME as H5Arrays, or None when the run has no such file."""
    full = os.path.join(path, name)
    if not os.path.exists(full):
        return None
    try:
        import h5py
    except ImportError:
        fail("%s: reading it needs h5py (Debian: python3-h5py, Spack: py-h5py)" % full)
    try:
        return H5Arrays(full, h5py.File(full, "r"))
    except OSError as e:
        fail("%s: cannot open it (damaged, or not HDF5): %s" % (full, e))


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def final_metrics(path, experiment):
    """The final metrics of a finished run as its experiment reports them, {name: value}
    (intervals as NAME_ci_low and NAME_ci_high), and its curve against N:
    (title, N, values, log scale) or None."""
    out, curve = {}, None
    if experiment == "ensemble":
        rates = read_csv(path, "convergence-rates.csv", required=False)
        if rates is not None:
            for i, q in enumerate(rates["quantity"]):
                out["alpha_%s" % q] = rates["alpha"][i]
                out["alpha_%s_ci_low" % q] = rates["ci_low"][i]
                out["alpha_%s_ci_high" % q] = rates["ci_high"][i]
        depths = read_csv(path, "convergence-depths.csv", required=False)
        if depths is not None:
            sel = depths["quantity"] == "e_theta"
            curve = ("e_theta (weak error)", depths["N"][sel], depths["sup"][sel], True)
    elif experiment == "cifar":
        final = read_csv(path, "final.csv", required=False)
        if final is not None and len(final["test_acc"]):
            acc = final["test_acc"]
            # the accuracy over all the point's models, with a binomial 95% interval on the test set's size
            n_test = test_count(path)
            out["test_acc"] = float(np.mean(acc))
            if n_test:
                half = Z95 * math.sqrt(max(out["test_acc"] * (1 - out["test_acc"]), 0) / (n_test * len(acc)))
                out["test_acc_ci_low"], out["test_acc_ci_high"] = out["test_acc"] - half, out["test_acc"] + half
            Ns = sorted(set(final["N"]))
            curve = ("test accuracy", np.array(Ns), np.array([np.mean(acc[final["N"] == N]) for N in Ns]), False)
    elif experiment == "node-fit":
        train = read_csv(path, "train.csv", required=False)
        if train is not None and len(train["loss"]):
            out["final_loss"] = float(train["loss"][-1])
    elif experiment == "annulus":
        folds = read_csv(path, "folds.csv", required=False)
        if folds is not None and len(folds["test_acc"]):
            out["test_acc"] = float(np.mean(folds["test_acc"]))
            Ns = sorted(set(folds["N"]))
            curve = ("test accuracy", np.array(Ns), np.array([np.mean(folds["test_acc"][folds["N"] == N]) for N in Ns]), False)
    elif experiment == "identity":
        summary = read_csv(path, "summary.csv", required=False)
        if summary is not None:
            for i, m in enumerate(summary["model"]):
                out["final_mse_%s" % m] = summary["final_mse"][i]
    return out, curve


def test_count(path):
    """The test images a cifar point was measured on, as its log says ("N test images from"), 0 when unknown."""
    try:
        with open(os.path.join(path, "log.txt")) as f:
            found = re.findall(r"(\d+) test images from", f.read())
        return int(found[-1]) if found else 0
    except OSError:
        return 0


# The phases of a profile's stacked bar: own times (they partition the wall
# time), the small ones merged; in the order of a step.
PHASES = [
    ("data", ("RnData",)), ("convolutions", ("RnConvFwd", "RnConvBwd")), ("batch norm", ("RnBatchNorm",)),
    ("activations", ("RnActivation",)), ("pool, dense, loss", ("RnPool", "RnDense", "RnLoss")),
    ("precision conversions", ("RnConvert",)), ("net (other)", ("RnNetForward", "RnNetBackward")),
    ("ODE solver (TS)", ("RnOdeSolve", "RnOdeAdjoint", "RnOdeRHS", "RnOdeVJP")),
    ("gradient reduction", ("RnGradReduce",)), ("optimizer", ("RnOptimStep",)), ("evaluation (other)", ("RnEvaluation",)),
    ("statistics", ("RnStats",)), ("checkpoints, snapshots", ("RnCheckpoint", "RnSnapshot")),
    ("waiting (group, queue)", ("RnGroupWait", "RnQueueWait")),
]


def read_profile(path):
    """[(label, profile)]: each unit's (units/*/profile.json) where the run has units,
    else the run's own (the manifest's profile); [] for a run without one."""
    out = []
    units = os.path.join(path, "units")
    if os.path.isdir(units):
        for name in sorted(os.listdir(units)):
            try:
                with open(os.path.join(units, name, "profile.json")) as f:
                    out.append((name, json.load(f)))
            except (OSError, ValueError):
                continue
    if not out:
        p = manifest_profile(path)
        if p:
            out.append(("run", p))
    return out


def manifest_profile(path):
    """The manifest's profile, or None (no manifest, or one without a profile)."""
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            return json.load(f).get("profile")
    except (OSError, ValueError):
        return None


def profile_plot(path, out_dir=None):
    """profile.png: a stacked bar of own time per phase for each unit (or the
    run), from read_profile; returns its path, or None without a profile."""
    profiles = read_profile(path)
    if not profiles:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(profiles) + 3.5), 4.6))
    bottoms = np.zeros(len(profiles))
    for i, (label, names) in enumerate(PHASES + [("other", ())]):
        heights = []
        for _, p in profiles:
            ev = p.get("events", {})
            heights.append(p.get("other_s", 0.0) if label == "other" else sum(ev.get(n, {}).get("self_s", 0.0) for n in names))
        heights = np.array(heights)
        if heights.sum() <= 0:
            continue
        ax.bar(range(len(profiles)), heights, bottom=bottoms, label=label, color="C%d" % (i % 10) if label != "other" else "0.75",
               hatch="//" if i >= 10 else None)
        bottoms += heights
    ax.set_xticks(range(len(profiles)))
    ax.set_xticklabels([l for l, _ in profiles], rotation=30 if len(profiles) > 3 else 0, ha="right" if len(profiles) > 3 else "center", fontsize=8)
    ax.set_ylabel("seconds (mean over the ranks, own time of each phase)")
    ax.set_title("where the time went%s" % (" (per unit)" if profiles[0][0] != "run" else ""), fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = os.path.join(out_dir or path, "profile.png")
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
    return out


def profile_lines(path):
    """Markdown lines of the run's phase shares (the manifest's profile), for a report."""
    p = manifest_profile(path)
    if not p:
        return []
    wall = p.get("wall_s", 0.0) or 1.0
    shares = []
    for label, names in PHASES:
        t = sum(p.get("events", {}).get(n, {}).get("self_s", 0.0) for n in names)
        if t > 0:
            shares.append((t, label))
    shares.sort(reverse=True)
    lines = ["## Where the time went", "", "Own time of each phase, mean over %d rank(s), of %.3g s (the manifest's profile; per unit in profile.png):" % (p.get("ranks", 1), wall), "",
             "| phase | seconds | share |", "|---|---|---|"]
    lines += ["| %s | %.3g | %.1f%% |" % (label, t, 100 * t / wall) for t, label in shares]
    lines += ["| other | %.3g | %.1f%% |" % (p.get("other_s", 0.0), 100 * p.get("other_s", 0.0) / wall), "", "![profile](profile.png)", ""]
    return lines

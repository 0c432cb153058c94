"""Shared helpers of the analysis scripts: reading a run directory.

A run directory holds manifest.json, config.cfg and metrics CSV files with a
header line (see include/resnode/metrics.h). Everything here needs only numpy
and the standard library; plots use matplotlib's Agg backend (no display).
"""
import csv
import json
import os
import sys

import numpy as np


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


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt

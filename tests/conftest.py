import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("NEUROZO_TEST", "1")

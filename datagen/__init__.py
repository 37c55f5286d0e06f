"""The generated dataset family: synthetic data in the exact on-disk formats of PASCAL VOC 2012 +
SBD or of a user's own data, for the demo, the tests and the quality benchmark. Not part of the
library (cores/): nothing there imports it."""

"""The one base class of the errors a user can act on (bad input, missing files, a run that
cannot go on). Scripts turn these into one line with what to do (cores.runtime.run_script);
anything else is a programming error and keeps its traceback."""


class SECError(Exception):
    """An error whose message names the file or key and what to do."""


class OutputError(SECError):
    """An output folder or file that cannot be written (permissions, full disk)."""


class ConfigError(SECError, ValueError):
    """A configuration file or override that cannot be applied."""

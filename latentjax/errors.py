"""Exceptions that carry a message meant for the user, shown by the CLI without a traceback."""


class LatentjaxError(Exception):
    """Base class: the message alone says what was wrong and what to do."""


class ConfigError(LatentjaxError, ValueError):
    """A config key or value is unknown or impossible."""


class DataUnavailableError(LatentjaxError, RuntimeError):
    """A dataset can be neither found locally nor downloaded."""


class RunDirectoryError(LatentjaxError, FileExistsError):
    """A run directory exists (and resuming was not asked for) or does not match the run."""


class IntegrityError(LatentjaxError, OSError):
    """A saved file or checkpoint is incomplete or does not match its checksum."""


class CheckpointMismatchError(LatentjaxError, ValueError):
    """A checkpoint holds other arrays (shapes, structure) than the model it is loaded into."""

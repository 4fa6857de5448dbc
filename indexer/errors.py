"""Errors a user can act on; the CLI and the service turn them into one clear sentence."""


class FacefindError(Exception):
    """Base class: the message is meant for a person."""


class UnreadableImage(FacefindError):
    """The bytes are not an image we can decode (or not an image at all)."""


class ImageTooLarge(UnreadableImage):
    """The image has more pixels than allowed (decompression-bomb guard)."""


class NoFaceFound(FacefindError):
    """No face was detected where one was required."""


class ModelNotFound(FacefindError):
    """No usable embedder checkpoint was given or found."""


class WeightsUnavailable(ModelNotFound):
    """Pretrained weights would have to be downloaded and cannot be."""


class ModelMismatch(FacefindError):
    """Vectors of another model than the store's: mixing them gives silent garbage."""


class StoreCorrupt(FacefindError):
    """The gallery database cannot be read; never silently replaced."""


class NotFound(FacefindError):
    """A gallery entry that does not exist."""


class Conflict(FacefindError):
    """A gallery entry with this id already exists."""


class StoreUnavailable(FacefindError):
    """The gallery database server cannot be reached now; worth retrying, nothing is lost."""


class ConfigError(FacefindError, ValueError):
    """A setting or flag has a value facefind cannot use (an unknown detector, a store URL of
    another kind, a device that is not there); a ValueError too, for callers of the core."""

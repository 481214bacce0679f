"""Where the data of a file came from."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from .errors import RhoDataError


@dataclass(frozen=True)
class Provenance:
    """Producer program and the settings that define the reference data."""

    producer: str = ""
    producer_version: str = ""
    functional: str = ""
    ao_basis: str = ""
    aux_basis: str = ""
    fit_metric: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra: dict = field(default_factory=dict)

    def to_attrs(self) -> dict[str, str]:
        attrs = {k: str(v) for k, v in asdict(self).items() if k != "extra"}
        attrs["extra"] = json.dumps(self.extra, sort_keys=True)
        return attrs

    @classmethod
    def from_attrs(cls, attrs) -> Provenance:
        values = {
            k: str(attrs[k])
            for k in ("producer", "producer_version", "functional", "ao_basis", "aux_basis", "fit_metric", "created")
            if k in attrs
        }
        try:
            extra = json.loads(str(attrs.get("extra", "{}")))
        except ValueError:
            raise RhoDataError("the provenance attribute 'extra' is not valid JSON") from None
        if not isinstance(extra, dict):
            raise RhoDataError("the provenance attribute 'extra' must be a JSON object")
        return cls(**values, extra=extra)

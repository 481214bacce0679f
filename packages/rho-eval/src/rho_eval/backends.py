"""Finding the field builder of a dataset's producer (rho-eval imports no backend itself).

Builders are found through the entry-point group of :mod:`rho_data.field_builders`, under
the name the producer writes as ``provenance.producer``. Worker processes receive the
factory (a module-level callable, pickled by reference) and the options, and build their own
builder.

Optional extension of the :class:`rho_data.field_builders.FieldBuilder` protocol, used for
cube files and density slices::

    build_on_points(dataset, request, points_bohr) -> dict[name, values]

returns, for one :class:`~rho_data.field_builders.FieldRequest`, the value of each requested
coefficient vector's field at the given points (bohr, shape (n, 3)), plus ``"scf"`` when the
producer can evaluate the SCF density there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from rho_data import RhoDataError, RhoFile, field_builders
from rho_data.yaml_input import short_repr

from .errors import RhoEvalError

BuilderFactory = Callable[[], Any]


def builder_factory(dataset: RhoFile, options: Mapping[str, Any] | None = None) -> BuilderFactory:
    """A picklable zero-argument callable that returns the field builder of ``dataset``'s producer.

    Builds one builder right away, so that a missing backend or a bad option fails here,
    in the main process, with the backend's own message.
    """
    producer = dataset.provenance.producer
    if not producer:
        raise RhoEvalError("the dataset records no producer in its provenance, so no field builder can be chosen", path=dataset.path)
    options = dict(options or {})
    try:
        field_builders.load_field_builder(producer, **options)
    except RhoDataError:
        raise
    except Exception as err:  # unknown option (TypeError) or a value the backend cannot use
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise RhoEvalError(
            f"the '{producer}' field builder refused the backend options {short_repr(sorted(map(str, options)))}: {reason}",
            path=dataset.path,
        ) from None
    factory = field_builders.available_builders()[producer].load()  # type: ignore[attr-defined]
    return functools.partial(factory, **options)


def points_capable(builder: Any, producer: str, purpose: str) -> Callable:
    """The builder's ``build_on_points`` method, or a clear error saying it has none."""
    method = getattr(builder, "build_on_points", None)
    if not callable(method):
        raise RhoEvalError(
            f"the '{producer}' field builder cannot evaluate fields at arbitrary points (it has no build_on_points), "
            f"so rho-eval cannot write {purpose}; update the backend or leave {purpose} out"
        )
    return method

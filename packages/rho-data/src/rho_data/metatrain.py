"""Datasets for metatrain (``mtt train``) and its predictions (``mtt eval``) back as rho-data files.

metatrain trains atomic-basis spherical targets only from its disk dataset format (a zip with
``<i>/system.mta`` and ``<i>/<target>.mts`` per structure: the other readers do not provide
the ``mtt::aux::system_index`` such targets need), so export writes, per part of a split
(the names of the index files, e.g. ``train``, ``val``, ``test``):

- ``<part>.zip``: metatrain's ``DiskDataset``, written with its own ``DiskDatasetWriter``: the
  systems (Angstrom) and the target ``mtt::electron_density``, a TensorMap in metatrain's
  layout of an atomic-basis target: keys ``(o3_lambda, o3_sigma, atom_type)``, samples
  ``(system, atom)``, components ``[o3_mu]``, properties ``[n]``;
- ``<part>.idx``: a rho-data index file, the dataset index of entry k of ``<part>.zip``;
- ``options.yaml``: an ``mtt train`` template with the per-species irreps of the basis;
- ``eval-<part>.yaml``: the ``mtt eval`` options of each part.

Export needs metatrain installed (it runs in metatrain's environment). Import reads the
TensorMap that ``mtt eval`` writes (``<stem>_mtt::electron_density.mts``) with metatensor-core
alone, checks it against the dataset (structure count, atom types and order, geometry when
the systems are given, basis irreps) and writes a predictions file.

The coefficient layout is rho-data's (:mod:`rho_data.mts`): only the key name of the
species differs (``center_type`` there, ``atom_type`` here).

The pieces: :mod:`rho_data.metatrain_layout` (the target's layout and its conversion),
:mod:`rho_data.metatrain_export` and :mod:`rho_data.metatrain_import`; their public names are
re-exported here.
"""

from __future__ import annotations

from .metatrain_export import SET_OF_PART, export_metatrain, options_yaml, part_name, write_disk_dataset
from .metatrain_import import import_metatrain, join_entries, read_disk_dataset_geometry
from .metatrain_layout import TARGET, from_metatrain, prediction_file, species_irreps, to_metatrain

__all__ = [
    "SET_OF_PART",
    "TARGET",
    "export_metatrain",
    "from_metatrain",
    "import_metatrain",
    "join_entries",
    "options_yaml",
    "part_name",
    "prediction_file",
    "read_disk_dataset_geometry",
    "species_irreps",
    "to_metatrain",
    "write_disk_dataset",
]

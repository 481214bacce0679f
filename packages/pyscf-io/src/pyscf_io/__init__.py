"""pyscf-io: reference densities with PySCF (SCF + density fitting) written as rho-data datasets."""

__version__ = "0.1.0"

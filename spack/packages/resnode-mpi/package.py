# Spack recipe for resnode-mpi:  spack repo add spack; spack install resnode-mpi
from spack.package import *


class ResnodeMpi(CMakePackage):
    """ResNets and their continuous limit, neural ODEs: does SGD on a
    weight-tied ResNet of depth N converge to SGD on the neural ODE as N
    grows, and how fast? MPI, PETSc TS (TSAdjoint), ScaLAPACK, oneDNN."""

    homepage = "https://example.invalid/resnode-mpi"
    git = "https://example.invalid/resnode-mpi.git"

    maintainers("resnode-mpi developers")

    version("main", branch="main")

    variant("native", default=False, description="Build for the host CPU only (-march=native)")
    variant("tests", default=False, description="Build the CUnit tests")

    depends_on("cmake@3.20:", type="build")
    depends_on("pkgconfig", type="build")
    depends_on("mpi")
    depends_on("petsc@3.18:+mpi~complex~int64 precision=double")
    depends_on("scalapack")
    depends_on("openblas")
    depends_on("onednn@2.6:")
    depends_on("libconfig")
    depends_on("hdf5+mpi+hl")
    depends_on("cunit", when="+tests")
    depends_on("python@3:", type="run")
    depends_on("py-numpy", type="run")
    depends_on("py-matplotlib", type="run")
    depends_on("py-h5py", type="run")

    def cmake_args(self):
        spec = self.spec
        return [
            self.define("PETSC_DIR", spec["petsc"].prefix),
            self.define("SCALAPACK_LIBRARIES", spec["scalapack"].libs.joined(";")),
            self.define("DNNLROOT", spec["onednn"].prefix),
            self.define_from_variant("RESNODE_NATIVE", "native"),
            self.define_from_variant("RESNODE_TESTS", "tests"),
            self.define("RESNODE_BENCHMARKS", False),
            self.define("RESNODE_PYTHON", spec["python"].command.path),
        ]

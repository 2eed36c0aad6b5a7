"""Packaging for tinyml-kit (distribution name ``tinyml-kit``, import name ``tinyml_kit``)."""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent

# Top-level folders that an installed package needs at run time. They live at the repository root
# (the design card's layout) and are copied into the package when it is built, so a non-editable
# install can still generate firmware projects and install system packages.
BUNDLED_DIRS = {"firmware": "tinyml_kit/firmware", "scripts": "tinyml_kit/scripts"}


class BuildPyWithBundles(build_py):
    """``build_py`` that also copies ``firmware/`` and ``scripts/`` into the built package."""

    def run(self) -> None:
        super().run()
        for src, dst in BUNDLED_DIRS.items():
            for path in sorted((HERE / src).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    target = Path(self.build_lib) / dst / path.relative_to(HERE / src)
                    self.mkpath(str(target.parent))
                    self.copy_file(str(path), str(target))


def _version() -> str:
    for line in (HERE / "tinyml_kit" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("tinyml_kit/__init__.py defines no __version__")


INSTALL_REQUIRES = [
    "tensorflow==2.20.*",
    "keras>=3.10,<4",
    "tf-keras==2.20.*",
    "tensorflow-model-optimization==0.8.*",
    "keras-tuner==1.4.*",
    "gymnasium>=1.0,<2",
    "ai-edge-litert>=1.2",
    "tflite-micro",
    "tflite>=2.10",
    "flatbuffers>=23.5",
    "numpy>=1.26",
    "matplotlib>=3.7",
    "rich>=13",
    "scikit-learn>=1.3",
    "h5py>=3.9",
    "pillow>=9",
]

EXTRAS = {
    "3d": ["open3d-cpu==0.20.*"],
    "dev": ["pytest>=8", "pytest-timeout", "ruff>=0.5", "nbmake>=1.5", "nbformat", "tox>=4"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="tinyml-kit",
    version=_version(),
    description="MCUNet/TinyEngine, TinyTL, DiffAugment, SPVNAS and GCN-RL for Keras and TFLite Micro",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tinyml_kit", "tinyml_kit.*"]),
    include_package_data=True,
    package_data={
        "tinyml_kit": [
            "data/resources/*",
            "zoo/resources/*",
            "circuits/spice/*",
        ],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    cmdclass={"build_py": BuildPyWithBundles},
    entry_points={"console_scripts": ["tinyml-kit=tinyml_kit.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Software Development :: Embedded Systems",
    ],
)

"""The one thing pyproject.toml cannot say: the optional compiled parts.

Without a C compiler the build goes on without them, and bulletin does the same work by the
same rules in Python: it reads front matter (src/bulletin/site/blockyaml.py) about five
times slower, and walks content/ (src/bulletin/site/walk.py) about three times slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bulletin.site._blockyaml",
            ["src/bulletin/site/_blockyaml.c"],
            optional=True,
        ),
        Extension("bulletin.site._walk", ["src/bulletin/site/_walk.c"], optional=True),
    ]
)

"""The one thing pyproject.toml cannot say: the optional compiled front-matter reader.

Without a C compiler the build goes on without it and bulletin reads front matter with the
same rules in Python (src/bulletin/site/blockyaml.py), about five times slower.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bulletin.site._blockyaml",
            ["src/bulletin/site/_blockyaml.c"],
            optional=True,
        )
    ]
)

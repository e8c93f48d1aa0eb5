"""The compiled block YAML reader (_blockyaml.c): blockyaml.read_in_python's rules in C."""

from .fields import Fields

def read(text: str, first_line: int, fields_type: type[Fields]) -> Fields | None: ...

"""Reading a site: items from content/ (front matter, fields, bodies) and their topics."""

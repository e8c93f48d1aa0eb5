"""Writing feeds: which items each feed shows, RSS and Atom (feedgen), JSON Feed, their pages."""

"""Landing: download source files and store them unchanged in the landing bucket."""

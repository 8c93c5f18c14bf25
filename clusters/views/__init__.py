"""Portal pages of the clusters app. Thin: parse the form, call a service or selector, render."""

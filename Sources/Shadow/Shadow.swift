// Placeholder so the target builds; shadow context lands with issue 3.

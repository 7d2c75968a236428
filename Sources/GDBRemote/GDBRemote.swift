// Placeholder so the target builds; the GDB remote client lands with issue 3.

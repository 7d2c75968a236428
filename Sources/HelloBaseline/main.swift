// The smallest Swift program: the baseline `swvmm bench boot` divides
// swvmm's resident memory by (issue 2 asks for swvmm <= 2x this).
print("hello, world")

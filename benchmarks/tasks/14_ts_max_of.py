"""Code: the code specialist writes `maxOf`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a TypeScript function maxOf(numbers: number[]) that returns the largest number, or undefined for an empty array, with tests."
KIND = "code"
check = code_defines(r"function\s+maxOf\b|\bmaxOf\s*=", "maxOf")

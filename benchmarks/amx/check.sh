# The portable build against pip's native build on a CPU with AMX (run where one is available; the
# result of one run is benchmarks/results/llama-build-amx.log). D must hold: the portable wheel from the
# wheelhouse (~/.cache/workbench/wheels/<key>/*.whl), diskcache's wheel, llama-cpp-python's source
# distribution repacked as llama-src.tar.xz, and tiny.gguf (shrink_gguf.py: smollm2-135m cut to 2 blocks).
# The native build is what `pip install llama-cpp-python` does by default (GGML_NATIVE=ON).
set -u
D="${1:-.devcheck}"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
grep -m1 'model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo | grep -o 'amx[a-z_0-9]*' | tr '\n' ' '; echo
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/deps $D/diskcache-*.whl
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/portable $D/llama_cpp_python-*.whl
GEN='
import sys, time
from llama_cpp import Llama, llama_print_system_info
print(llama_print_system_info().decode().strip())
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=4, verbose=False)
t = time.perf_counter()
out = llm.create_completion("def add(a, b):", max_tokens=64, temperature=0)
dt = time.perf_counter() - t
print("generated", out["usage"]["completion_tokens"], "tokens in %.3f s" % dt, repr(out["choices"][0]["text"][:40]))
'
run() { # label site
  for i in 1 2; do
    PYTHONPATH=$2:/tmp/deps python3 -c "$GEN" $D/tiny.gguf; rc=$?
    echo "== $1 run $i: exit status $rc $( [ $rc -gt 128 ] && kill -l $((rc-128)) )"
  done
}
run portable /tmp/portable
mkdir -p /tmp/src && tar xJf $D/llama-src.tar.xz -C /tmp/src
t0=$(date +%s)
( cd /tmp/src/llama_cpp_python-0.3.36 && CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=16 \
  python3 -m pip wheel -q --no-deps --no-build-isolation -w /tmp/nw . > /tmp/nbuild.log 2>&1 ) || { echo "native build failed"; tail -30 /tmp/nbuild.log; }
echo "native build took $(( $(date +%s) - t0 )) s"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/native /tmp/nw/*.whl
run native /tmp/native

# ort_setup.sh: sourced by bench.sh and make_golden.sh.  Installs ONNX
# Runtime from npm into build/ort (never into the repository) and defines
# ort_model STYLE, which writes build/ort/STYLE.onnx from ../shared/anchors.
SHARED=${SHARED:-../shared}
ORT=build/ort
mkdir -p "$ORT"
[ -d "$ORT/node_modules/onnxruntime-node" ] ||
    npm install --prefix "$ORT" --ignore-scripts onnxruntime-node@1.30.0 >/dev/null 2>&1
ort_model() {
    [ -f "$ORT/$1.onnx" ] || python3 "$SHARED/anchors/make_onnx.py" "$SHARED/models/$1" "$ORT/$1.onnx"
}

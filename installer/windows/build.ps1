# Build the Windows installer: dist\hilum\ (PyInstaller one-folder bundle) -> dist\hilum-<version>-setup.exe
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1
#
# Needs: 64-bit Python 3.11/3.12 with Hilum installed in .venv (pip install -e ".[dev]"), and
# Inno Setup 6 (ISCC.exe). See installer\README.md, "Windows".
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$py = if ($env:PYTHON) { $env:PYTHON } else { ".venv\Scripts\python.exe" }
$iscc = if ($env:ISCC) { $env:ISCC } else { Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }

& $py -m pip install -q "pyinstaller==6.22.3"
Remove-Item -Recurse -Force dist\hilum, build\hilum -ErrorAction SilentlyContinue
& $py -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build installer\hilum.spec
if ($LASTEXITCODE) { throw "PyInstaller failed" }

& $py installer\collect_licenses.py --manifest build\hilum\bundle_manifest.json --out dist\hilum\licenses
if ($LASTEXITCODE) { throw "licence collection failed" }
Copy-Item resources\icons\hilum.png, resources\icons\hilum.svg dist\hilum\
# Inno Setup wants an .ico for the setup program itself
& $py -c "from PIL import Image; Image.open('resources/icons/hilum.png').save('build/hilum.ico', sizes=[(16,16),(24,24),(32,32),(48,48),(64,64),(128,128),(256,256)])"

# the bundle must pass its own self-test before it is packaged
$env:HILUM_HOME = Join-Path $env:TEMP ("hilum-selftest-" + [guid]::NewGuid())
& dist\hilum\hilum.exe --self-test
if ($LASTEXITCODE) { throw "self-test of the bundle failed" }
Remove-Item Env:HILUM_HOME

$version = & $py -c "import app; print(app.__version__)"
& $iscc "/DAppVersion=$version" installer\windows\hilum.iss
if ($LASTEXITCODE) { throw "Inno Setup failed" }
Write-Host "built dist\hilum-$version-setup.exe"

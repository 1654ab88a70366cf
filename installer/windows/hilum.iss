; Inno Setup 6 script: a per-machine Hilum installer for Windows 10/11 x64.
;
; Build (see installer/README.md, "Windows"):
;   installer\windows\build.ps1            (PyInstaller bundle + licences + this script)
; or by hand, after dist\hilum\ exists:
;   iscc /DAppVersion=0.1.0 installer\windows\hilum.iss
;
; Result: dist\hilum-<version>-setup.exe. It installs into "C:\Program Files\Hilum" (admin rights,
; all users), adds a Start-menu entry (and optionally a desktop icon), registers the .dcm file
; association (Open with Hilum; Hilum becomes the default only where no other program claims
; .dcm), and has an uninstaller in Apps & features.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Hilum"
#define AppPublisher "Hilum"
#define AppExe "hilum.exe"
#define AppGuiExe "hilum-gui.exe"
#define ProgId "Hilum.DICOM"

[Setup]
AppId={{6F0D3C59-2A4B-4F5E-9A57-1C2D7B8E4A31}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; per-machine: Program Files, HKLM, all users' Start menu
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
SourceDir=..\..
OutputDir=dist
OutputBaseFilename=hilum-{#AppVersion}-setup
SetupIconFile=build\hilum.ico
UninstallDisplayIcon={app}\{#AppGuiExe}
UninstallDisplayName={#AppName} {#AppVersion}
LicenseFile=installer\windows\LICENSE-NOTICE.txt
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "dcmassoc"; Description: "Open DICOM (.dcm) files with Hilum"; GroupDescription: "File associations:"

[InstallDelete]
; a new version replaces the old bundle whole (no stale DLLs from an older release)
Type: filesandordirs; Name: "{app}\*"

[UninstallDelete]
Type: files; Name: "{app}\selftest-install.txt"

[Files]
Source: "dist\hilum\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppGuiExe}"; Parameters: "gui"; WorkingDir: "{app}"; Comment: "DICOM workstation with on-device AI"
Name: "{autoprograms}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#AppExe}"" --self-test"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppGuiExe}"; Parameters: "gui"; WorkingDir: "{app}"; Tasks: desktopicon

[Registry]
; per-machine association (HKA = HKLM for an admin install). "OpenWithProgids" adds Hilum to
; "Open with" without taking .dcm from another viewer; the default value is set only when empty.
Root: HKA; Subkey: "Software\Classes\.dcm"; ValueType: string; ValueName: ""; ValueData: "{#ProgId}"; Flags: uninsdeletevalue createvalueifdoesntexist; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\.dcm"; ValueType: string; ValueName: "Content Type"; ValueData: "application/dicom"; Flags: createvalueifdoesntexist; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\{#ProgId}"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\{#ProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppGuiExe},0"; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\{#ProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppGuiExe}"" gui ""%1"""; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\Applications\{#AppGuiExe}\SupportedTypes"; ValueType: string; ValueName: ".dcm"; ValueData: ""; Flags: uninsdeletekey; Tasks: dcmassoc
; "hilum" on PATH for admins and scripts (hilum --self-test)
Root: HKLM; Subkey: "Software\Microsoft\Windows\CurrentVersion\App Paths\{#AppExe}"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe}"; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#AppGuiExe}"; Parameters: "gui"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
{ The installer proves the installation before it finishes: hilum.exe --self-test (headless:
  sample -> classifier -> CAM -> draft -> PDF). Its report goes to a file in the installation
  folder (selftest-install.txt); a failure is shown in a message box, or with /SUPPRESSMSGBOXES
  only written to the setup log (/LOG=file). Skip with /NOSELFTEST (e.g. when imaging many
  machines). }
procedure CurStepChanged(CurStep: TSetupStep);
var
  ResultCode: Integer;
  Report: String;
begin
  if (CurStep = ssPostInstall) and (Pos('/NOSELFTEST', UpperCase(GetCmdTail)) = 0) then
  begin
    WizardForm.StatusLabel.Caption := 'Running the Hilum self-test...';
    Report := ExpandConstant('{app}\selftest-install.txt');
    if Exec(ExpandConstant('{cmd}'), '/C ""' + ExpandConstant('{app}\{#AppExe}') + '" --self-test > "' + Report + '" 2>&1"',
            ExpandConstant('{app}'), SW_HIDE, ewWaitUntilTerminated, ResultCode) and (ResultCode = 0) then
      Log('Hilum self-test passed; report: ' + Report)
    else
    begin
      Log('Hilum self-test FAILED (exit ' + IntToStr(ResultCode) + '); report: ' + Report);
      SuppressibleMsgBox('Hilum was installed, but its self-test failed. See ' + Report +
        ' and the GPU notes in the installation guide.', mbError, MB_OK, IDOK);
    end;
  end;
end;

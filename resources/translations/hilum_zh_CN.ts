<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="zh_CN">
<context>
    <name>DeidPreviewDialog</name>
    <message>
        <source>De-identification preview</source>
        <translation>去标识化预览</translation>
    </message>
    <message>
        <source>PS3.15 Basic Application Level Confidentiality Profile. These attributes of the source images will be removed or replaced in every exported object; the source files are not changed. Identifiers found in the report text are replaced with [removed].</source>
        <translation>PS3.15 基本应用级保密配置文件。源图像的以下属性将在每个导出对象中被删除或替换；源文件不会被更改。报告文本中发现的标识符将替换为 [removed]。</translation>
    </message>
    <message>
        <source>Tag</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Attribute</source>
        <translation>属性</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>操作</translation>
    </message>
    <message>
        <source>Current value</source>
        <translation>当前值</translation>
    </message>
    <message>
        <source>New value</source>
        <translation>新值</translation>
    </message>
</context>
<context>
    <name>ExportDialog</name>
    <message>
        <source>Export report</source>
        <translation>导出报告</translation>
    </message>
    <message>
        <source>Export as</source>
        <translation>导出格式</translation>
    </message>
    <message>
        <source>PDF</source>
        <translation>PDF</translation>
    </message>
    <message>
        <source>DICOM (SR, encapsulated PDF, saliency images)</source>
        <translation>DICOM（结构化报告、封装 PDF、显著性图像）</translation>
    </message>
    <message>
        <source>Key images</source>
        <translation>关键图像</translation>
    </message>
    <message>
        <source>Image %1</source>
        <translation>图像 %1</translation>
    </message>
    <message>
        <source>Print the saliency overlay and its legend</source>
        <translation>打印显著性叠加图及其图例</translation>
    </message>
    <message>
        <source>No key images chosen.</source>
        <translation>未选择关键图像。</translation>
    </message>
    <message>
        <source>Privacy</source>
        <translation>隐私</translation>
    </message>
    <message>
        <source>De-identify (PS3.15 Basic Profile)</source>
        <translation>去标识化（PS3.15 基本配置）</translation>
    </message>
    <message>
        <source>Preview...</source>
        <translation>预览...</translation>
    </message>
    <message>
        <source>Institution</source>
        <translation>机构</translation>
    </message>
    <message>
        <source>Browse...</source>
        <translation>浏览...</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>Address</source>
        <translation>地址</translation>
    </message>
    <message>
        <source>Logo</source>
        <translation>标志</translation>
    </message>
    <message>
        <source>Sign-off</source>
        <translation>签发</translation>
    </message>
    <message>
        <source>Reader name (required)</source>
        <translation>阅片医师姓名（必填）</translation>
    </message>
    <message>
        <source>I have reviewed this report and sign it off</source>
        <translation>我已审阅并签发此报告</translation>
    </message>
    <message>
        <source>Reader</source>
        <translation>阅片医师</translation>
    </message>
    <message>
        <source>Folder...</source>
        <translation>文件夹...</translation>
    </message>
    <message>
        <source>Save to</source>
        <translation>保存到</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Open PDF</source>
        <translation>打开 PDF</translation>
    </message>
    <message>
        <source>Show folder</source>
        <translation>显示文件夹</translation>
    </message>
    <message>
        <source>Sign off the report (reader name) to export it.</source>
        <translation>请先签发报告（填写阅片医师姓名）再导出。</translation>
    </message>
    <message>
        <source>No source images: open the study first.</source>
        <translation>没有源图像：请先打开检查。</translation>
    </message>
    <message>
        <source>Images (*.png *.jpg *.jpeg)</source>
        <translation>图像 (*.png *.jpg *.jpeg)</translation>
    </message>
    <message>
        <source>Exporting...</source>
        <translation>正在导出...</translation>
    </message>
    <message>
        <source>Exported %1 DICOM file(s)</source>
        <translation>已导出 %1 个 DICOM 文件</translation>
    </message>
    <message>
        <source> and the PDF</source>
        <translation> 和 PDF</translation>
    </message>
    <message>
        <source> to %1.</source>
        <translation> 到 %1。</translation>
    </message>
    <message>
        <source>Export failed</source>
        <translation>导出失败</translation>
    </message>
</context>
<context>
    <name>ExportPanel</name>
    <message>
        <source>Key images</source>
        <translation>关键图像</translation>
    </message>
    <message>
        <source>Add current image</source>
        <translation>添加当前图像</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Export...</source>
        <translation>导出...</translation>
    </message>
    <message>
        <source>No image on screen.</source>
        <translation>屏幕上没有图像。</translation>
    </message>
    <message>
        <source>saliency map (red = where the model looked)</source>
        <translation>显著性图（红色 = 模型关注的区域）</translation>
    </message>
    <message>
        <source>Image %1</source>
        <translation>图像 %1</translation>
    </message>
    <message>
        <source>Open a study and draft a report before exporting.</source>
        <translation>请先打开检查并起草报告，然后再导出。</translation>
    </message>
    <message>
        <source>No report for this study yet: draft it in the Report panel first.</source>
        <translation>此检查尚无报告：请先在报告面板中起草。</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
</context>
</TS>
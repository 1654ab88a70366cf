<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="zh_CN">
<context>
    <name>AIPanel</name>
    <message>
        <source>No series open.</source>
        <extracomment>result table columns (translated at display time) amber, dark text: readable on the dark and the light theme the model card's words for a demonstration model (shown in the panel, next to its result)</extracomment>
        <translation>未打开序列。</translation>
    </message>
    <message>
        <source>Show models outside their stated use</source>
        <translation>显示超出声明用途的模型</translation>
    </message>
    <message>
        <source>Override applicability (modality / body part / view); results are marked.</source>
        <translation>忽略适用范围（模态/部位/体位）；结果会被标记。</translation>
    </message>
    <message>
        <source>Where the models run; the provider actually used is shown below.</source>
        <translation>模型运行的设备；实际使用的执行提供程序显示在下方。</translation>
    </message>
    <message>
        <source>Run</source>
        <translation>运行</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Model card</source>
        <translation>模型卡</translation>
    </message>
    <message>
        <source>Provider: -</source>
        <translation>执行提供程序：-</translation>
    </message>
    <message>
        <source>AI-generated, requires review by a physician.</source>
        <extracomment>intended use / OOD of the results (population, OOD score): amber, not a tooltip model name, version and short sha256 of the shown results (not only in a tooltip) amber banner: a model used outside its stated intended use / a demonstration model</extracomment>
        <translation>AI 生成，需经医师审核（AI-generated, requires review by a physician）。</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Checking installed models...</source>
        <translation>正在检查已安装的模型…</translation>
    </message>
    <message>
        <source>Image</source>
        <translation>图像</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Finding</source>
        <translation>发现</translation>
    </message>
    <message>
        <source>Prob.</source>
        <translation>概率</translation>
    </message>
    <message>
        <source>Threshold</source>
        <translation>阈值</translation>
    </message>
    <message>
        <source>Flag</source>
        <translation>标记</translation>
    </message>
    <message>
        <source>Probability</source>
        <translation>概率</translation>
    </message>
    <message>
        <source> - site override of the bundled model</source>
        <translation> - 本院替换的内置模型</translation>
    </message>
    <message>
        <source> - will not run: failed verification</source>
        <translation> - 不会运行：校验失败</translation>
    </message>
    <message>
        <source> - outside stated use</source>
        <translation> - 超出声明用途</translation>
    </message>
    <message>
        <source>No installed model applies to this series.</source>
        <translation>没有适用于此序列的已安装模型。</translation>
    </message>
    <message numerus="yes">
        <source>%1 %2 - %n image file(s)</source>
        <translation><numerusform>%1 %2 - %n 个图像文件</numerusform></translation>
    </message>
    <message>
        <source>Tick at least one model.</source>
        <translation>请至少勾选一个模型。</translation>
    </message>
    <message>
        <source>This series has no image files to classify.</source>
        <translation>此序列没有可分类的图像文件。</translation>
    </message>
    <message>
        <source>Running...</source>
        <translation>正在运行…</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>Results could not be stored with the study: %1</source>
        <translation>结果未能随检查保存：%1</translation>
    </message>
    <message>
        <source>Im %1</source>
        <translation>图 %1</translation>
    </message>
    <message>
        <source>fr %1</source>
        <translation>帧 %1</translation>
    </message>
    <message>
        <source>Provider: %1</source>
        <translation>执行提供程序：%1</translation>
    </message>
    <message>
        <source>%1, version %2, sha256 %3</source>
        <translation>%1，版本 %2，sha256 %3</translation>
    </message>
    <message>
        <source>%1 was used outside its stated intended use: interpret its result with care.</source>
        <translation>%1 在其声明的预期用途之外使用：请谨慎解读其结果。</translation>
    </message>
    <message>
        <source>Demonstration model, not for clinical use</source>
        <translation>演示模型，不可用于临床</translation>
    </message>
    <message>
        <source>Outside intended use: these AI results are not reliable.</source>
        <translation>超出预期用途：这些 AI 结果不可靠。</translation>
    </message>
    <message numerus="yes">
        <source>%n result(s)</source>
        <translation><numerusform>%n 个结果</numerusform></translation>
    </message>
    <message>
        <source>, stored %1</source>
        <translation>，保存于 %1</translation>
    </message>
    <message numerus="yes">
        <source>%n image(s) could not be classified</source>
        <translation><numerusform>%n 幅图像无法分类</numerusform></translation>
    </message>
    <message>
        <source>the ticked models do not apply to these images</source>
        <translation>所勾选的模型不适用于这些图像</translation>
    </message>
    <message>
        <source>POSITIVE</source>
        <translation>阳性</translation>
    </message>
    <message>
        <source>(outside stated use)</source>
        <translation>（超出声明用途）</translation>
    </message>
    <message>
        <source>(outside intended use)</source>
        <translation>（超出预期用途）</translation>
    </message>
    <message>
        <source>AI</source>
        <translation>人工智能</translation>
    </message>
</context>
<context>
    <name>BatchDialog</name>
    <message>
        <source>Batch analysis</source>
        <extracomment>executor choices: label -&gt; what ``ray_address`` the archive run gets ("" = an address field)</extracomment>
        <translation>批量分析</translation>
    </message>
    <message>
        <source>Add folder…</source>
        <translation>添加文件夹…</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>Saliency maps (CAM)</source>
        <translation>显著性图 (CAM)</translation>
    </message>
    <message>
        <source>Draft report text</source>
        <translation>起草报告文本</translation>
    </message>
    <message>
        <source>PDF report</source>
        <translation>PDF 报告</translation>
    </message>
    <message>
        <source>DICOM export (SR, SC)</source>
        <translation>DICOM 导出 (SR, SC)</translation>
    </message>
    <message>
        <source>De-identify outputs</source>
        <translation>输出去标识化</translation>
    </message>
    <message>
        <source>all CPUs</source>
        <translation>全部 CPU</translation>
    </message>
    <message>
        <source>Study</source>
        <translation>检查</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Reason</source>
        <translation>原因</translation>
    </message>
    <message>
        <source>Start</source>
        <translation>开始</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Folders</source>
        <translation>文件夹</translation>
    </message>
    <message>
        <source>Output folder</source>
        <translation>输出文件夹</translation>
    </message>
    <message>
        <source>Outputs</source>
        <translation>输出</translation>
    </message>
    <message>
        <source>Workers</source>
        <translation>工作进程</translation>
    </message>
    <message>
        <source>Run</source>
        <translation>运行</translation>
    </message>
    <message>
        <source>Folder of studies</source>
        <translation>检查文件夹</translation>
    </message>
    <message>
        <source>Enter the address of the Ray cluster (host:port).</source>
        <translation>请输入 Ray 集群的地址 (host:port)。</translation>
    </message>
    <message>
        <source>Add at least one folder and choose an output folder.</source>
        <translation>请至少添加一个文件夹并选择输出文件夹。</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>正在启动…</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>{done} of {n} studies done, {failed} failed, {skipped} already done before.</source>
        <translation>{n} 个检查中已完成 {done} 个，失败 {failed} 个，{skipped} 个此前已完成。</translation>
    </message>
</context>
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
    <name>DemoRunner</name>
    <message>
        <source>Demo: loading the sample chest film ...</source>
        <extracomment>the indication the demo types into the Report panel (conditions the bundled draft)</extracomment>
        <translation>演示：正在载入示例胸片…</translation>
    </message>
    <message>
        <source>Demo stopped: %1</source>
        <translation>演示已停止：%1</translation>
    </message>
    <message>
        <source>a step took too long.</source>
        <translation>某一步骤耗时过长。</translation>
    </message>
    <message>
        <source>the AI, Saliency and Report panels are needed.</source>
        <translation>需要 AI、显著性和报告面板。</translation>
    </message>
    <message>
        <source>Demo: the classifier runs on the image (AI panel) ...</source>
        <translation>演示：分类器正在处理图像（AI 面板）…</translation>
    </message>
    <message>
        <source>the classifier could not start.</source>
        <translation>分类器无法启动。</translation>
    </message>
    <message>
        <source>Demo: the bundled generator drafts the report (Report panel) ...</source>
        <translation>演示：内置生成器正在起草报告（报告面板）…</translation>
    </message>
    <message>
        <source>Demo: signing off (not reviewed) and exporting PDF and DICOM ...</source>
        <translation>演示：正在签发（未经审核）并导出 PDF 和 DICOM…</translation>
    </message>
    <message>
        <source>the classifier gave no result.</source>
        <translation>分类器没有给出结果。</translation>
    </message>
    <message>
        <source>Demo: the saliency map of the same pass goes on the image (Saliency panel) ...</source>
        <translation>演示：同一次推理的显著性图叠加到图像上（显著性面板）…</translation>
    </message>
    <message numerus="yes">
        <source>Demo finished: report.pdf and %n DICOM file(s) exported to %1</source>
        <translation><numerusform>演示完成：report.pdf 和 %n 个 DICOM 文件已导出到 %1</numerusform></translation>
    </message>
    <message>
        <source>Hilum demo</source>
        <translation>Hilum 演示</translation>
    </message>
    <message>
        <source>The classifier's result is in the AI panel, the saliency map is on the image and the draft is in the Report panel. The export was signed off unattended: not reviewed by a physician.</source>
        <translation>分类结果在 AI 面板中，显著性图叠加在图像上，报告草稿在报告面板中。此次导出为无人值守签发：未经医师审核。</translation>
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
        <source>I looked at the key images: no identifying text in the pixels</source>
        <translation>我已检查关键图像：像素中没有可识别身份的文字</translation>
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
        <source>Sign-off check</source>
        <translation>签署检查</translation>
    </message>
    <message>
        <source>The report differs from the AI results:</source>
        <translation>报告与 AI 结果不一致：</translation>
    </message>
    <message>
        <source>Acknowledge and sign</source>
        <translation>确认并签署</translation>
    </message>
    <message>
        <source>Edit the report</source>
        <translation>编辑报告</translation>
    </message>
    <message>
        <source>Edit the report in the Report panel, then export again.</source>
        <translation>请在报告面板中编辑报告，然后重新导出。</translation>
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
    <message>
        <source>No application on this desktop opens PDF files. The report is at %1.</source>
        <translation>此桌面没有可打开 PDF 文件的应用程序。报告位于 %1。</translation>
    </message>
    <message>
        <source>This desktop has no file manager to show the folder. The files are in %1.</source>
        <translation>此桌面没有可显示文件夹的文件管理器。文件位于 %1。</translation>
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
        <translation>导出…</translation>
    </message>
    <message>
        <source>No image on screen.</source>
        <translation>屏幕上没有图像。</translation>
    </message>
    <message>
        <source>saliency map, colour map %1: bright = where the model looked</source>
        <translation>显著性图，色彩映射 %1：亮处 = 模型关注的区域</translation>
    </message>
    <message>
        <source>saliency map: bright = where the model looked</source>
        <translation>显著性图：亮处 = 模型关注的区域</translation>
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
<context>
    <name>ImportLog</name>
    <message>
        <source>Time</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>Problem</source>
        <translation>问题</translation>
    </message>
    <message>
        <source>No problems.</source>
        <translation>没有问题。</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清除</translation>
    </message>
    <message>
        <source>%1 file(s) could not be loaded.</source>
        <translation>%1 个文件无法加载。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Drop DICOM files, folders or zip archives here</source>
        <translation>将 DICOM 文件、文件夹或 zip 压缩包拖放到此处</translation>
    </message>
    <message>
        <source>or use File ▸ Open (Ctrl+O)</source>
        <translation>或使用 文件 ▸ 打开 (Ctrl+O)</translation>
    </message>
    <message>
        <source>Studies</source>
        <translation>检查</translation>
    </message>
    <message>
        <source>Import log</source>
        <translation>导入日志</translation>
    </message>
    <message>
        <source>AI: not loaded</source>
        <translation>AI：未加载</translation>
    </message>
    <message>
        <source>Execution provider of the AI models</source>
        <translation>AI 模型的执行提供程序</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>&amp;Open files…</source>
        <translation>打开文件(&amp;O)…</translation>
    </message>
    <message>
        <source>Open &amp;folder…</source>
        <translation>打开文件夹(&amp;F)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>设置(&amp;S)…</translation>
    </message>
    <message>
        <source>Cancel background work</source>
        <translation>取消后台任务</translation>
    </message>
    <message>
        <source>Pointer / select</source>
        <translation>指针 / 选择</translation>
    </message>
    <message>
        <source>Window/level tool</source>
        <translation>窗宽/窗位工具</translation>
    </message>
    <message>
        <source>Pan tool</source>
        <translation>平移工具</translation>
    </message>
    <message>
        <source>Zoom tool</source>
        <translation>缩放工具</translation>
    </message>
    <message>
        <source>Length</source>
        <translation>长度</translation>
    </message>
    <message>
        <source>Rectangle ROI</source>
        <translation>矩形 ROI</translation>
    </message>
    <message>
        <source>Ellipse ROI</source>
        <translation>椭圆 ROI</translation>
    </message>
    <message>
        <source>Angle</source>
        <translation>角度</translation>
    </message>
    <message>
        <source>Cobb angle (two lines)</source>
        <translation>Cobb 角（两条线）</translation>
    </message>
    <message>
        <source>Delete measurement</source>
        <translation>删除测量</translation>
    </message>
    <message>
        <source>Clear measurements</source>
        <translation>清除所有测量</translation>
    </message>
    <message>
        <source>&amp;Invert</source>
        <translation>反相(&amp;I)</translation>
    </message>
    <message>
        <source>Rotate 90° clockwise</source>
        <translation>顺时针旋转 90°</translation>
    </message>
    <message>
        <source>Rotate 90° counter-clockwise</source>
        <translation>逆时针旋转 90°</translation>
    </message>
    <message>
        <source>Flip horizontal</source>
        <translation>水平翻转</translation>
    </message>
    <message>
        <source>Flip vertical</source>
        <translation>垂直翻转</translation>
    </message>
    <message>
        <source>&amp;Fit to window</source>
        <translation>适应窗口(&amp;F)</translation>
    </message>
    <message>
        <source>Actual pixels (1:1)</source>
        <translation>实际像素 (1:1)</translation>
    </message>
    <message>
        <source>Zoom in</source>
        <translation>放大</translation>
    </message>
    <message>
        <source>Zoom out</source>
        <translation>缩小</translation>
    </message>
    <message>
        <source>&amp;Reset view</source>
        <translation>重置视图(&amp;R)</translation>
    </message>
    <message>
        <source>Automatic window</source>
        <translation>自动窗宽窗位</translation>
    </message>
    <message>
        <source>Cine play/pause</source>
        <translation>电影播放/暂停</translation>
    </message>
    <message>
        <source>Cine faster</source>
        <translation>电影加速</translation>
    </message>
    <message>
        <source>Cine slower</source>
        <translation>电影减速</translation>
    </message>
    <message>
        <source>DICOM &amp;tags…</source>
        <translation>DICOM 标签(&amp;T)…</translation>
    </message>
    <message>
        <source>Show AI overlay</source>
        <translation>显示 AI 叠加图</translation>
    </message>
    <message>
        <source>Header / default window</source>
        <translation>文件头 / 默认窗</translation>
    </message>
    <message>
        <source>Window preset %1</source>
        <translation>窗宽窗位预设 %1</translation>
    </message>
    <message>
        <source>Layout %1</source>
        <translation>布局 %1</translation>
    </message>
    <message>
        <source>Synchronised scrolling</source>
        <translation>同步滚动</translation>
    </message>
    <message>
        <source>Corner annotations</source>
        <translation>角注释</translation>
    </message>
    <message>
        <source>Full screen</source>
        <translation>全屏</translation>
    </message>
    <message>
        <source>Keyboard and mouse…</source>
        <translation>键盘和鼠标…</translation>
    </message>
    <message>
        <source>About Hilum</source>
        <translation>关于 Hilum</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>Open &amp;recent</source>
        <translation>最近打开(&amp;R)</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>Panels</source>
        <translation>面板</translation>
    </message>
    <message>
        <source>&amp;Image</source>
        <translation>图像(&amp;I)</translation>
    </message>
    <message>
        <source>Window presets</source>
        <translation>窗宽窗位预设</translation>
    </message>
    <message>
        <source>&amp;Tools</source>
        <translation>工具(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <source>Main toolbar</source>
        <translation>主工具栏</translation>
    </message>
    <message>
        <source>Presets</source>
        <translation>预设</translation>
    </message>
    <message>
        <source>Window presets (number keys)</source>
        <translation>窗宽窗位预设（数字键）</translation>
    </message>
    <message>
        <source>Panel %1 unavailable: missing %2</source>
        <translation>面板 %1 不可用：缺少 %2</translation>
    </message>
    <message>
        <source>Panel %1 failed to start: %2</source>
        <translation>面板 %1 启动失败：%2</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>Importing %1 item(s)…</source>
        <translation>正在导入 %1 项…</translation>
    </message>
    <message>
        <source>; %1 problem(s) in the import log</source>
        <translation>；导入日志中有 %1 个问题</translation>
    </message>
    <message>
        <source>Cine %1 fps</source>
        <translation>电影 %1 帧/秒</translation>
    </message>
    <message>
        <source>Import cancelled; what was read so far stays.</source>
        <translation>导入已取消；已读取的内容将保留。</translation>
    </message>
    <message>
        <source>Hilum</source>
        <translation>Hilum</translation>
    </message>
    <message>
        <source>Imported %1 series from %2 files</source>
        <translation>已从 %2 个文件导入 %1 个序列</translation>
    </message>
    <message>
        <source>Import log (%1)</source>
        <translation>导入日志 (%1)</translation>
    </message>
    <message>
        <source>That series has no images in the library any more.</source>
        <translation>该序列在库中已没有图像。</translation>
    </message>
<message>
        <source>&amp;Batch analysis…</source>
        <translation>批量分析(&amp;B)…</translation>
    </message>
    <message>
        <source>Set sync landmark (current slices)</source>
        <translation>设置同步标志（当前层面）</translation>
    </message>
    <message>
        <source>Save layout as protocol…</source>
        <translation>将布局保存为协议…</translation>
    </message>
    <message>
        <source>View</source>
        <translation>视图</translation>
    </message>
    <message>
        <source>Hanging protocol</source>
        <translation>挂片协议</translation>
    </message>
    <message>
        <source>Imported %1 measurement(s), %2 key image(s), %3 view(s).</source>
        <extracomment>measurement kinds the viewport can draw and show a changed measurement is written after this long without another change (or on release)</extracomment>
        <translation>已导入 %1 个测量、%2 个关键图像、%3 个视图。</translation>
    </message>
    <message>
        <source>Not imported: %1</source>
        <translation>未导入：%1</translation>
    </message>
    <message>
        <source>Import annotations</source>
        <translation>导入标注</translation>
    </message>
    <message>
        <source>DICOM presentation states, measurement reports, key images (*.dcm *);;All files (*)</source>
        <translation>DICOM 显示状态、测量报告、关键图像 (*.dcm *);;所有文件 (*)</translation>
    </message>
    <message>
        <source>Import annotations (GSPS, SR, KOS)…</source>
        <translation>导入标注（GSPS、SR、KOS）…</translation>
    </message>
    <message>
        <source>Key image marked (exported as a Key Object Selection).</source>
        <translation>已标记关键图像（将导出为关键对象选择）。</translation>
    </message>
    <message>
        <source>Key image unmarked.</source>
        <translation>已取消关键图像标记。</translation>
    </message>
    <message>
        <source>Mark key image</source>
        <translation>标记关键图像</translation>
    </message>
    <message>
        <source>Image</source>
        <translation>图像</translation>
    </message>
    <message>
        <source>File</source>
        <translation>文件</translation>
    </message>
    <message>
        <source>MPR (3 planes + original)</source>
        <translation>MPR（3 个平面 + 原始图像）</translation>
    </message>
    <message>
        <source>MPR needs a series of several slices.</source>
        <translation>MPR 需要包含多个层面的序列。</translation>
    </message>
    <message>
        <source>Receiving from PACS as %1 on port %2</source>
        <translation>正在以 %1 在端口 %2 接收 PACS 图像</translation>
    </message>
    <message>
        <source>Received from PACS: %1</source>
        <translation>已从 PACS 接收：%1</translation>
    </message>
    <message>
        <source>PACS &amp;Query/Retrieve…</source>
        <translation>PACS 查询/获取(&amp;Q)…</translation>
    </message>
<message>
        <source>Scroll each viewport to the same landmark, then press Ctrl+L to link them.</source>
        <translation>将各视口滚动到同一解剖标志，然后按 Ctrl+L 关联。</translation>
    </message>
<message>
        <source>Prior studies of this patient: </source>
        <translation>此患者的既往检查：</translation>
    </message>
    <message>
        <source>(open a study first)</source>
        <translation>（请先打开检查）</translation>
    </message>
    <message>
        <source>Save hanging protocol</source>
        <translation>保存挂片协议</translation>
    </message>
    <message>
        <source>Name:</source>
        <translation>名称：</translation>
    </message>
    <message>
        <source>Hanging protocol saved: </source>
        <translation>挂片协议已保存：</translation>
    </message>
    <message>
        <source>Viewports linked at this landmark (offset sync).</source>
        <translation>视口已在此解剖标志处关联（偏移同步）。</translation>
    </message>
    <message>
        <source>Offset sync needs two viewports with slice positions.</source>
        <translation>偏移同步需要两个带层面位置的视口。</translation>
    </message>
</context>
<context>
    <name>MeasurementsPanel</name>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Insert into report</source>
        <translation>插入报告</translation>
    </message>
    <message>
        <source>No measurements on this study yet.</source>
        <translation>此检查尚无测量。</translation>
    </message>
    <message>
        <source>Measurements</source>
        <translation>测量</translation>
    </message>
</context>
<context>
    <name>MprView</name>
    <message>
        <source>Slab</source>
        <extracomment>pane name -&gt; (row, col) directions in LPS (see app.dicom.mpr) and its colour</extracomment>
        <translation>层块</translation>
    </message>
    <message>
        <source>Measure</source>
        <translation>测量</translation>
    </message>
    <message>
        <source>Off</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Length</source>
        <translation>长度</translation>
    </message>
    <message>
        <source>Ellipse ROI</source>
        <translation>椭圆 ROI</translation>
    </message>
    <message>
        <source>Rectangle ROI</source>
        <translation>矩形 ROI</translation>
    </message>
    <message>
        <source>Angle</source>
        <translation>角度</translation>
    </message>
    <message>
        <source>Cobb angle (two lines)</source>
        <translation>Cobb 角（两条线）</translation>
    </message>
    <message>
        <source>Reset planes</source>
        <translation>重置平面</translation>
    </message>
    <message>
        <source>Click: move crosshair · Shift+drag: rotate (oblique) · Wheel: scroll · Right drag: window</source>
        <translation>单击：移动十字线 · Shift+拖动：旋转（斜位）· 滚轮：翻页 · 右键拖动：窗宽窗位</translation>
    </message>
</context>
<context>
    <name>PresetsEditor</name>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>W</source>
        <translation>窗宽</translation>
    </message>
    <message>
        <source>L</source>
        <translation>窗位</translation>
    </message>
    <message>
        <source>Key</source>
        <translation>按键</translation>
    </message>
    <message>
        <source>Add</source>
        <translation>添加</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>Restore defaults</source>
        <translation>恢复默认</translation>
    </message>
    <message>
        <source>New preset</source>
        <translation>新预设</translation>
    </message>
    <message>
        <source>Ignored (needs a name, W &gt; 0 and a number L): %1</source>
        <translation>已忽略（需要名称、窗宽 &gt; 0 和数字窗位）：%1</translation>
    </message>
</context>
<context>
    <name>QueryRetrieveDialog</name>
    <message>
        <source>PACS Query/Retrieve</source>
        <translation>PACS 查询/获取</translation>
    </message>
    <message>
        <source>Echo</source>
        <translation>连通测试</translation>
    </message>
    <message>
        <source>PACS node:</source>
        <translation>PACS 节点：</translation>
    </message>
    <message>
        <source>Patient ID</source>
        <translation>患者 ID</translation>
    </message>
    <message>
        <source>Patient name</source>
        <translation>患者姓名</translation>
    </message>
    <message>
        <source>Study date</source>
        <translation>检查日期</translation>
    </message>
    <message>
        <source>Modality</source>
        <translation>模态</translation>
    </message>
    <message>
        <source>Accession</source>
        <translation>检查号</translation>
    </message>
    <message>
        <source>Search</source>
        <translation>搜索</translation>
    </message>
    <message>
        <source>Patient</source>
        <translation>患者</translation>
    </message>
    <message>
        <source>Date</source>
        <translation>日期</translation>
    </message>
    <message>
        <source>Description</source>
        <translation>描述</translation>
    </message>
    <message>
        <source>Images</source>
        <translation>图像</translation>
    </message>
    <message>
        <source>Retrieve</source>
        <translation>获取</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Receive from PACS in the background while Hilum is open</source>
        <translation>Hilum 打开时在后台接收 PACS 发送的图像</translation>
    </message>
    <message>
        <source>Method:</source>
        <translation>方式：</translation>
    </message>
    <message>
        <source>No PACS node yet: add one with `hilum pacs add NAME --host H --port P --ae-title AE`.</source>
        <translation>尚无 PACS 节点：请用 `hilum pacs add NAME --host H --port P --ae-title AE` 添加。</translation>
    </message>
    <message>
        <source>Echo OK in %1 ms</source>
        <translation>连通测试成功，用时 %1 毫秒</translation>
    </message>
    <message>
        <source>Searching…</source>
        <translation>正在搜索…</translation>
    </message>
    <message>
        <source>%1 stud(ies) found</source>
        <translation>找到 %1 个检查</translation>
    </message>
    <message>
        <source>Select a study or series first.</source>
        <translation>请先选择检查或序列。</translation>
    </message>
    <message>
        <source>Retrieving…</source>
        <translation>正在获取…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>Retrieved %1 instance(s) (%2 new)</source>
        <translation>已获取 %1 个实例（%2 个新实例）</translation>
    </message>
    <message>
        <source>Retrieve cancelled; the instances received so far are in the library.</source>
        <translation>获取已取消；已收到的实例保存在库中。</translation>
    </message>
</context>
<context>
    <name>ReportPanel</name>
    <message>
        <source>AI-generated draft: requires review by a physician</source>
        <extracomment>background behind text the generator wrote: a deep amber on the dark theme (light text stays readable, contrast &gt; 7:1), a pale amber on a light palette</extracomment>
        <translation>AI 生成的草稿：需经医师审核（AI-generated draft: requires review by a physician）</translation>
    </message>
    <message>
        <source>e.g. Cough and fever</source>
        <translation>例如：咳嗽、发热</translation>
    </message>
    <message>
        <source>e.g. None, or prior study date</source>
        <translation>例如：无，或既往检查日期</translation>
    </message>
    <message>
        <source>free notes for the generator</source>
        <translation>给生成器的自由备注</translation>
    </message>
    <message>
        <source>Indication</source>
        <translation>检查指征</translation>
    </message>
    <message>
        <source>Comparison</source>
        <translation>对比</translation>
    </message>
    <message>
        <source>Notes</source>
        <translation>备注</translation>
    </message>
    <message>
        <source>Bundled model (offline)</source>
        <translation>内置模型（离线）</translation>
    </message>
    <message>
        <source>OpenAI-compatible server</source>
        <translation>OpenAI 兼容服务器</translation>
    </message>
    <message>
        <source>Backend</source>
        <translation>后端</translation>
    </message>
    <message>
        <source>Server URL</source>
        <translation>服务器地址</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Allow plain http:// to another computer</source>
        <translation>允许以明文 http:// 连接其他计算机</translation>
    </message>
    <message>
        <source>Warning: patient data will cross the network unencrypted. Use https:// unless the network is trusted.</source>
        <translation>警告：患者数据将以未加密方式在网络上传输。除非网络可信，否则请使用 https://。</translation>
    </message>
    <message>
        <source>AI findings: none (run the AI panel, or the draft is conditioned as normal)</source>
        <translation>AI 发现：无（请运行 AI 面板，否则草稿按正常情况生成）</translation>
    </message>
    <message>
        <source>Draft</source>
        <translation>草稿</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <source>Insert</source>
        <translation>插入</translation>
    </message>
    <message>
        <source>FINDINGS:

IMPRESSION:</source>
        <translation>所见（FINDINGS）：

印象（IMPRESSION）：</translation>
    </message>
    <message>
        <source>Amend</source>
        <extracomment>signed state: reader and local time; the text is read-only until Amend</extracomment>
        <translation>修订</translation>
    </message>
    <message>
        <source>Unlock the signed report for a new, amended version</source>
        <translation>解锁已签发的报告，生成新的修订版本</translation>
    </message>
    <message>
        <source>Drafting ...</source>
        <extracomment>the signed-off draft shown (None while the report is open for editing) version of the report: 1, then +1 for every amendment after a sign-off</extracomment>
        <translation>正在起草…</translation>
    </message>
    <message>
        <source>AI-written text is highlighted: review and edit it before sign-off.</source>
        <translation>AI 撰写的文字已高亮：签发前请审阅并编辑。</translation>
    </message>
    <message>
        <source>Edited by the radiologist; sentences still highlighted are AI-written.</source>
        <translation>已由放射科医师编辑；仍高亮的句子为 AI 撰写。</translation>
    </message>
    <message>
        <source>Evidence: no AI result concerns this sentence.</source>
        <translation>依据：没有与此句相关的 AI 结果。</translation>
    </message>
    <message>
        <source>Evidence: %1</source>
        <translation>依据：%1</translation>
    </message>
    <message>
        <source>(its image is not open)</source>
        <translation>（其图像未打开）</translation>
    </message>
    <message>
        <source>(its image is not in the library)</source>
        <translation>（其图像不在库中）</translation>
    </message>
    <message>
        <source>AI findings: %1</source>
        <translation>AI 发现：%1</translation>
    </message>
    <message>
        <source>none above threshold</source>
        <translation>无超过阈值的发现</translation>
    </message>
    <message>
        <source>; below threshold: %1</source>
        <translation>；低于阈值：%1</translation>
    </message>
    <message>
        <source>Exported unattended on %1 (version %2): NOT reviewed by a physician. Read-only: Amend to change it.</source>
        <translation>于 %1 无人值守导出（第 %2 版）：未经医师审核。只读：如需修改请点击“修订”。</translation>
    </message>
    <message>
        <source>Signed off by %1 on %2 (version %3). Read-only: Amend to change it.</source>
        <translation>由 %1 于 %2 签发（第 %3 版）。只读：如需修改请点击“修订”。</translation>
    </message>
    <message>
        <source>Amending: version %1; the signed version %2 is kept.</source>
        <translation>正在修订：第 %1 版；已签发的第 %2 版被保留。</translation>
    </message>
    <message>
        <source>Report</source>
        <translation>报告</translation>
    </message>
    <message>
        <source>Enter the server URL and the model name first.</source>
        <translation>请先输入服务器地址和模型名称。</translation>
    </message>
    <message>
        <source>Preparing the de-identified prompt ...</source>
        <translation>正在准备去标识化的提示词…</translation>
    </message>
    <message>
        <source>Send to the generation server?</source>
        <translation>发送到生成服务器？</translation>
    </message>
    <message>
        <source>This de-identified prompt will be sent to %1. Patient data leaves this workstation. Check it before sending.</source>
        <translation>此去标识化提示词将发送到 %1。患者数据将离开本工作站。发送前请检查。</translation>
    </message>
    <message>
        <source>Nothing was sent.</source>
        <translation>未发送任何内容。</translation>
    </message>
    <message>
        <source>Replace your edited text with a new draft?</source>
        <translation>用新草稿替换您编辑过的文字？</translation>
    </message>
    <message>
        <source>Drafted by %1 on %2.</source>
        <translation>由 %1 在 %2 上起草。</translation>
    </message>
    <message>
        <source>Draft not saved: %1</source>
        <translation>草稿未保存：%1</translation>
    </message>
</context>
<context>
    <name>SaliencyPanel</name>
    <message>
        <source>Show saliency overlay</source>
        <translation>显示显著性叠加</translation>
    </message>
    <message>
        <source>auto: exact CAM when the model allows it, else RISE</source>
        <translation>auto：模型支持时使用精确 CAM，否则使用 RISE</translation>
    </message>
    <message>
        <source>Hide the overlay below this fraction of the map's maximum</source>
        <translation>隐藏低于图最大值此比例的叠加</translation>
    </message>
    <message>
        <source>Contours only</source>
        <translation>仅轮廓</translation>
    </message>
    <message>
        <source>Compute</source>
        <translation>计算</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Method</source>
        <translation>方法</translation>
    </message>
    <message>
        <source>Label</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Colormap</source>
        <translation>色彩映射</translation>
    </message>
    <message>
        <source>Opacity</source>
        <translation>不透明度</translation>
    </message>
    <message>
        <source>Hide below</source>
        <translation>低于此值隐藏</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>AI-generated, requires review by a physician.</source>
        <translation>AI 生成，需经医师审核（AI-generated, requires review by a physician）。</translation>
    </message>
    <message>
        <source>Models could not be listed: %1</source>
        <translation>无法列出模型：%1</translation>
    </message>
    <message>
        <source>Open an image first.</source>
        <translation>请先打开图像。</translation>
    </message>
    <message>
        <source>Computing saliency...</source>
        <translation>正在计算显著性…</translation>
    </message>
    <message>
        <source>Cancelled.</source>
        <translation>已取消。</translation>
    </message>
    <message>
        <source>The image changed while the map was computed; compute again.</source>
        <translation>计算期间图像已更改；请重新计算。</translation>
    </message>
    <message>
        <source>%1 map of %2.</source>
        <translation>%2 的 %1 图。</translation>
    </message>
    <message>
        <source>Saliency</source>
        <translation>显著性</translation>
    </message>
</context>
<context>
    <name>SendToPacsBox</name>
    <message>
        <source>Send to PACS</source>
        <translation>发送到 PACS</translation>
    </message>
    <message>
        <source>The PACS node the exported DICOM files are sent to (nodes: `hilum pacs add` or the Query/Retrieve dialog).</source>
        <translation>导出的 DICOM 文件发送到的 PACS 节点（节点：`hilum pacs add` 或查询/检索对话框）。</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <source>No PACS node yet: add one with `hilum pacs add`.</source>
        <translation>尚无 PACS 节点：请用 `hilum pacs add` 添加。</translation>
    </message>
    <message>
        <source>Export as DICOM first; then the files can be sent.</source>
        <translation>请先导出为 DICOM，然后才能发送文件。</translation>
    </message>
    <message>
        <source>Sending %1 file(s) to %2...</source>
        <translation>正在向 %2 发送 %1 个文件...</translation>
    </message>
    <message>
        <source>Sent %1 of %2 file(s) to %3.</source>
        <translation>已向 %3 发送 %1/%2 个文件。</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>Show corner annotations</source>
        <translation>显示角注释</translation>
    </message>
    <message>
        <source>Hide patient name and ID on images</source>
        <translation>在图像上隐藏患者姓名和 ID</translation>
    </message>
    <message>
        <source>Synchronise scrolling by slice position</source>
        <translation>按层面位置同步滚动</translation>
    </message>
    <message>
        <source>Smooth magnified pixels</source>
        <translation>平滑放大的像素</translation>
    </message>
    <message>
        <source>Layout</source>
        <translation>布局</translation>
    </message>
    <message>
        <source>Cine speed</source>
        <translation>电影速度</translation>
    </message>
    <message>
        <source>Window/level speed</source>
        <translation>窗宽/窗位调节速度</translation>
    </message>
    <message>
        <source>Frame cache per series</source>
        <translation>每个序列的帧缓存</translation>
    </message>
    <message>
        <source>AI overlay opacity</source>
        <translation>AI 叠加图不透明度</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>系统默认</translation>
    </message>
    <message>
        <source>CT window presets</source>
        <translation>CT 窗宽窗位预设</translation>
    </message>
    <message>
        <source>Takes effect when Hilum is restarted</source>
        <translation>重新启动 Hilum 后生效</translation>
    </message>
    <message>
        <source>The new language applies when Hilum is restarted.</source>
        <translation>新语言将在重新启动 Hilum 后生效。</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>语言</translation>
    </message>
</context>
<context>
    <name>ShortcutsDialog</name>
    <message>
        <source>Keyboard and mouse</source>
        <translation>键盘和鼠标</translation>
    </message>
    <message>
        <source>Keys / mouse</source>
        <translation>按键 / 鼠标</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>操作</translation>
    </message>
</context>
<context>
    <name>StudyBrowser</name>
    <message>
        <source>(no name)</source>
        <extracomment>drag-and-drop format of a series dragged from the browser onto a viewport</extracomment>
        <translation>（无姓名）</translation>
    </message>
    <message>
        <source>Se %1 · </source>
        <translation>序列 %1 · </translation>
    </message>
    <message>
        <source> [stack %1]</source>
        <translation> [堆栈 %1]</translation>
    </message>
    <message>
        <source>(no description)</source>
        <translation>（无描述）</translation>
    </message>
    <message numerus="yes">
        <source>%n image(s)</source>
        <translation><numerusform>%n 幅图像</numerusform></translation>
    </message>
</context>
<context>
    <name>TagBrowser</name>
    <message>
        <source>DICOM tags</source>
        <extracomment>values longer than this are cut in the tag browser (pixel data, big LUTs)</extracomment>
        <translation>DICOM 标签</translation>
    </message>
    <message>
        <source>Search tag, name or value…</source>
        <translation>搜索标签、名称或值…</translation>
    </message>
    <message>
        <source>Tag</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>Value</source>
        <translation>值</translation>
    </message>
    <message>
        <source>No image.</source>
        <translation>没有图像。</translation>
    </message>
    <message>
        <source>Reading header…</source>
        <translation>正在读取文件头…</translation>
    </message>
</context>
<context>
    <name>Viewport</name>
    <message>
        <source>Im %1 / %2</source>
        <extracomment>windowed uint8 frames kept for the current window (cine and scrolling back reuse them)</extracomment>
        <translation>图 %1 / %2</translation>
    </message>
    <message>
        <source>Pos %1 mm</source>
        <translation>位置 %1 mm</translation>
    </message>
    <message>
        <source>Thk %1 mm</source>
        <translation>层厚 %1 mm</translation>
    </message>
    <message>
        <source>Zoom %1%</source>
        <translation>缩放 %1%</translation>
    </message>
    <message>
        <source>No pixel spacing: px</source>
        <translation>无像素间距：单位为像素</translation>
    </message>
    <message>
        <source>Spacing at detector</source>
        <translation>探测器处间距</translation>
    </message>
    <message>
        <source>Cine %1 fps</source>
        <translation>电影 %1 帧/秒</translation>
    </message>
    <message>
        <source>Loading full resolution…</source>
        <translation>正在载入全分辨率…</translation>
    </message>
    <message>
        <source>AI overlay — requires review by a physician</source>
        <translation>AI 叠加 — 需经医师审核（AI overlay — requires review by a physician）</translation>
    </message>
</context>
<context><name>GraphicsScene</name><message><source>Export...</source><translation>导出…</translation></message></context></TS>
<?xml version='1.0' encoding='utf-8'?>
<TS version="2.1" language="zh_CN">
<context>
    <name>AIPanel</name>
    <message>
        <source>AI</source>
        <translation>人工智能</translation>
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
</context>
<context>
    <name>SaliencyPanel</name>
    <message>
        <source>Saliency</source>
        <translation>显著性</translation>
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
        <source>English</source>
        <translation>English</translation>
    </message>
    <message>
        <source>Chinese (Simplified)</source>
        <translation>简体中文</translation>
    </message>
    <message>
        <source>Takes effect when Hilum is restarted</source>
        <translation>重新启动 Hilum 后生效</translation>
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
        <source>(no description)</source>
        <translation>（无描述）</translation>
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
</context>
</TS>